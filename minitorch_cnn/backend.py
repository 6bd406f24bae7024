"""TEMPORARY: the old backend vocabulary ("numpy" | "cupy" | "cuda-emulator") over ``device.py``,
kept only while the renovation converts its last callers (issue 18); new code imports ``device``."""
from .config import Config
from .device import (  # noqa: F401  (re-exported for the callers not converted yet)
    DEFAULT_DTYPE,
    check_same_device,
    cuda_module,
    device,
    device_of,
    get_array_module,
    gpu_available,
    is_array,
    kernels,
    set_default_device,
    shares_memory,
    to_numpy,
    uniform_on_device,
    using_device,
)

_NAMES = {"numpy": "cpu", "cupy": "cuda", "cuda-emulator": "cuda-emulator", "cpu": "cpu", "cuda": "cuda"}


def _spec(name):
    if name not in _NAMES:
        raise ValueError(f"unknown backend {name!r}; expected 'numpy', 'cupy' or 'cuda-emulator'")
    return _NAMES[name]


def set_backend(name):
    set_default_device(_spec(name))


def using(name):
    return using_device(_spec(name))


def default_module():
    return Config.device.xp


def to_device(array, name):
    return device(_spec(name) if isinstance(name, str) else name).send(array)
