"""The framework's switches, in one place (as DeZero's and Chainer's ``Config``).

    Config.grad_enabled     record graphs for backward (``no_grad()`` turns it off)
    Config.device           where ``Tensor(x)`` puts new data (``device.py``: ``using_device``, ``set_default_device``)
    Config.launch_order     the CUDA emulator runs blocks and threads 'forward' or 'reverse'

Read them as ``Config.name``; change one for a block of code with ``using_config(name, value)``, which
puts the old value back however the block ends. Nothing else in the library keeps a mutable switch.
"""
import contextlib


class Config:
    grad_enabled = True
    device = None          # a device.Device; device.py sets the CPU at import (config imports nothing)
    launch_order = "forward"


@contextlib.contextmanager
def using_config(name, value):
    """``with using_config("grad_enabled", False): ...``: ``Config.name`` is ``value`` inside the block."""
    if not hasattr(Config, name) or name.startswith("_"):
        raise AttributeError(f"using_config: no switch {name!r}; the switches are "
                             f"{', '.join(k for k in vars(Config) if not k.startswith('_'))}")
    old = getattr(Config, name)
    setattr(Config, name, value)
    try:
        yield
    finally:
        setattr(Config, name, old)
