"""The one place that decides which array library runs: NumPy (CPU) or CuPy (GPU).

Everything else asks this module. A layer calls ``get_array_module(x)`` to get
``numpy`` or ``cupy`` for the arrays it holds, and ``kernels(x)`` to get the
hand-written kernels for that device (Numba on the CPU, CUDA on the GPU).
No other file branches on the backend.

Backends: "numpy" (CPU, Numba kernels), "cupy" (GPU, the CUDA kernels of kernels/cuda) and
"cuda-emulator": arrays stay NumPy, as under "numpy", but ``kernels(x)`` returns the CUDA
wrappers and their ``.cu`` kernels run on the host emulator (kernels/cuda/emulator.py), so the
GPU code path runs, and is tested, on machines without a GPU. No Numba kernel runs under it.

CuPy is optional: importing this module without it works, and asking for the
GPU then raises a clear error.
"""
import contextlib
import importlib

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
    if name in ("numpy", "cuda-emulator"):
        return np
    if name == "cupy":
        if not gpu_available():
            raise RuntimeError("backend 'cupy' requested but CuPy or a CUDA device is not available "
                               "(install with: pip install .[gpu])")
        return _cupy
    raise ValueError(f"unknown backend {name!r}; expected 'numpy', 'cupy' or 'cuda-emulator'")


def set_backend(name):
    """Choose where new tensors are created: 'numpy' (CPU), 'cupy' (GPU), or 'cuda-emulator'
    (NumPy arrays, GPU kernels run on the host emulator)."""
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


# The array types of the installed backends: one isinstance against a tuple answers "is this an array".
_ARRAY_TYPES = (np.ndarray,) if _cupy is None else (np.ndarray, _cupy.ndarray)


def is_array(x):
    return isinstance(x, _ARRAY_TYPES)


def to_device(array, name):
    """Copy an array to 'numpy' (host) or 'cupy' (device); 'cuda-emulator' arrays live on the host."""
    if name in ("numpy", "cuda-emulator"):
        return _cupy.asnumpy(array) if (_cupy is not None and isinstance(array, _cupy.ndarray)) else np.asarray(array)
    return _module_for(name).asarray(array)   # an unknown name is refused there


def to_numpy(array):
    return to_device(array, "numpy")


def device_of(array):
    return "cupy" if get_array_module(array) is not np else "numpy"


def kernels(*arrays):
    """The kernel module (same function names on every device) for these arrays: the CUDA
    wrappers for CuPy arrays, and for NumPy arrays under "cuda-emulator"; Numba otherwise."""
    on_cpu = get_array_module(*arrays) is np and _state["default"] != "cuda-emulator"
    return _kernel_module("cpu" if on_cpu else "cuda")


_kernel_modules = {}


def _kernel_module(name):
    """minitorch_cnn.kernels.<name>, imported on first use (kernels import this module) and then kept,
    so the hot path pays a dict lookup, not an import statement."""
    if name not in _kernel_modules:
        _kernel_modules[name] = importlib.import_module(f"{__package__}.kernels.{name}")
    return _kernel_modules[name]


_cuda_modules = {}


def cuda_module(code, like):
    """CUDA source ``code`` compiled for the device of array ``like``: a ``cupy.RawModule`` for a
    CuPy array, the host emulator's RawModule (same interface) for a NumPy array. Cached."""
    on_gpu = get_array_module(like) is not np
    key = (on_gpu, code)
    if key not in _cuda_modules:
        if on_gpu:
            _cuda_modules[key] = _cupy.RawModule(code=code)
        else:
            from .kernels.cuda import emulator
            _cuda_modules[key] = emulator.RawModule(code=code)
    return _cuda_modules[key]


def check_same_device(arrays, where):
    """Raise one clear error when ``arrays`` live on different devices (host and GPU, or two GPUs).

    Called once per Function call (autograd), so a mix fails where the user made it, not deep inside
    a kernel. Free when CuPy is not installed; otherwise one type test per array unless one is not a plain
    NumPy array (a GPU array, an ndarray subclass: those take the full check).
    """
    if _cupy is None or len(arrays) < 2:
        return
    for a in arrays:                             # all on the host (the common case): one type test each
        if type(a) is not np.ndarray:
            break
    else:
        return
    devices = {("cuda", a.device.id) if isinstance(a, _cupy.ndarray) else ("cpu", None)
               for a in arrays if isinstance(a, np.ndarray | _cupy.ndarray)}
    if len(devices) > 1:
        names = sorted(f"cuda:{i}" if kind == "cuda" else "cpu (NumPy)" for kind, i in devices)
        raise RuntimeError(f"{where}: inputs on different devices: {' and '.join(names)}; "
                           f"move them to one device first (Tensor.to / Module.to)")


def shares_memory(a, b):
    """Whether arrays ``a`` and ``b`` overlap in memory (False when they live on different devices)."""
    xp = get_array_module(a)
    if get_array_module(b) is not xp:
        return False
    return bool(xp.shares_memory(a, b))


def uniform_on_device(seed, shape, dtype, like):
    """Uniform [0, 1) samples drawn where ``like`` lives, from a generator seeded with ``seed``: on the
    GPU no host array is made or copied (random.uniform draws the seed from the framework's generator)."""
    return _cupy.random.default_rng(seed).random(shape, dtype=dtype)
