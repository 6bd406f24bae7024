"""The framework's switches, in one place (as DeZero's and Chainer's ``Config``).

    Config.grad_enabled     record graphs for backward (``no_grad()`` turns it off)
    Config.device           where ``Tensor(x)`` puts new data (``device.py``: ``using_device``, ``set_default_device``)
    Config.launch_order     the CUDA emulator runs blocks and threads 'forward' or 'reverse'
    Config.allow_tf32       float32 GEMMs on a GPU may use TF32 tensor cores (off by default, as PyTorch's
                            ``torch.backends.cuda.matmul.allow_tf32``): set it with ``set_allow_tf32``

Read them as ``Config.name``; change one for a block of code with ``using_config(name, value)``, which
puts the old value back however the block ends. Nothing else in the library keeps a mutable switch.

TF32 keeps float32's range but rounds each GEMM input to a 10-bit mantissa (float32 has 23): a product's
relative error grows from ~1e-7 to ~5e-4, and a GEMM output's (a sum over K products) to about
1e-3 relative to the sum of |a*b| (NVIDIA's Ampere whitepaper; PyTorch's TF32 notes measure the same order).
Training converges as in float32 in practice; comparisons of GEMM results against float32 references
need rtol ~1e-2 with it on (gradcheck and the kernel tolerances assume it off). Convolutions are GEMMs
here, so they are affected; the CUDA kernels of kernels/cuda are not (they do no GEMM).
"""
import contextlib


class Config:
    grad_enabled = True
    device = None          # a device.Device; device.py sets the CPU at import (config imports nothing)
    launch_order = "forward"
    allow_tf32 = False


def set_allow_tf32(allowed, linalg=None):
    """Let (True) or forbid (False) float32 GEMMs on GPUs to use TF32: ``Config.allow_tf32`` and CuPy's
    cuBLAS compute type for float32 (``cupy._core._routines_linalg.set_compute_type``, the runtime form of
    the ``CUPY_TF32=1`` environment variable). Without CuPy nothing else changes (the CPU has no TF32).
    ``linalg``: the module to set it in (tests pass a stand-in); CuPy's by default."""
    Config.allow_tf32 = bool(allowed)
    if linalg is None:
        try:
            from cupy._core import _routines_linalg as linalg
            from cupy_backends.cuda.api.runtime import CUDARuntimeError
        except (ImportError, AttributeError):    # no CuPy, or the strict stand-in (no cuBLAS to set)
            return
    else:
        CUDARuntimeError = ()   # noqa: N806  (a stand-in module raises nothing to catch)
    import numpy as np
    try:   # CuPy asks the GPU's compute capability here (TF32 needs sm_80 or later)
        linalg.set_compute_type(np.float32, linalg.COMPUTE_TYPE_TF32 if allowed else linalg.COMPUTE_TYPE_DEFAULT)
    except CUDARuntimeError:   # CuPy installed, no GPU or driver: no GEMM will run on one
        pass


@contextlib.contextmanager
def using_config(name, value):
    """``with using_config("grad_enabled", False): ...``: ``Config.name`` is ``value`` inside the block."""
    if not hasattr(Config, name) or name.startswith("_"):
        raise AttributeError(f"using_config: no switch {name!r}; the switches are "
                             f"{', '.join(k for k in vars(Config) if not k.startswith('_'))}")
    old = getattr(Config, name)
    put = set_allow_tf32 if name == "allow_tf32" else lambda v: setattr(Config, name, v)   # it also sets cuBLAS
    put(value)
    try:
        yield
    finally:
        put(old)
