"""The one place that decides which array library runs: NumPy (CPU) or CuPy (GPU).

Everything else asks this module. A layer calls ``get_array_module(x)`` to get
``numpy`` or ``cupy`` for the arrays it holds, and ``kernels(x)`` to get the
hand-written kernels for that device (Numba on the CPU, CUDA on the GPU).
No other file branches on the backend.

CuPy is optional: importing this module without it works, and asking for the
GPU then raises a clear error.
"""
import contextlib

import numpy as np

try:  # CuPy is an optional extra (pip install .[gpu])
    import cupy as _cupy
except Exception:  # ImportError, or a CUDA driver problem at import time
    _cupy = None

_state = {"default": "numpy"}

DEFAULT_DTYPE = np.float32


def gpu_available():
    """True when CuPy imports and sees at least one CUDA device."""
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _module_for(name):
    if name == "numpy":
        return np
    if name == "cupy":
        if not gpu_available():
            raise RuntimeError("backend 'cupy' requested but CuPy or a CUDA device is not available "
                               "(install with: pip install .[gpu])")
        return _cupy
    raise ValueError(f"unknown backend {name!r}; expected 'numpy' or 'cupy'")


def set_backend(name):
    """Choose where new tensors are created: 'numpy' (CPU) or 'cupy' (GPU)."""
    _module_for(name)
    _state["default"] = name


@contextlib.contextmanager
def using(name):
    """Temporarily create new tensors on another backend."""
    old = _state["default"]
    set_backend(name)
    try:
        yield
    finally:
        _state["default"] = old


def default_module():
    """The array module new tensors are created with."""
    return _module_for(_state["default"])


def get_array_module(*arrays):
    """``numpy`` or ``cupy``, whichever owns the given arrays (NumPy for scalars)."""
    if _cupy is not None:
        for a in arrays:
            if isinstance(a, _cupy.ndarray):
                return _cupy
    return np


def is_array(x):
    return isinstance(x, np.ndarray) or (_cupy is not None and isinstance(x, _cupy.ndarray))


def to_device(array, name):
    """Copy an array to 'numpy' (host) or 'cupy' (device)."""
    if name == "numpy":
        return _cupy.asnumpy(array) if (_cupy is not None and isinstance(array, _cupy.ndarray)) else np.asarray(array)
    return _module_for(name).asarray(array)   # an unknown name is refused there


def to_numpy(array):
    return to_device(array, "numpy")


def device_of(array):
    return "cupy" if get_array_module(array) is not np else "numpy"


def kernels(*arrays):
    """The kernel module (same function names on every device) for these arrays."""
    if get_array_module(*arrays) is np:
        from .kernels import cpu
        return cpu
    from .kernels import cuda
    return cuda
