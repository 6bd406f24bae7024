"""Where arrays live and which code runs on them: one ``Device`` object, in one vocabulary.

    "cpu"            NumPy arrays, the Numba kernels of kernels/cpu
    "cuda", "cuda:N" CuPy arrays on GPU N ("cuda" is GPU 0), the CUDA kernels of kernels/cuda
    "cuda-emulator"  NumPy arrays, but the CUDA kernels run on the host emulator (kernels/cuda/emulator.py):
                     the GPU code path, run and tested on a machine without a GPU

The same strings serve ``Tensor.to``, ``Module.to``, ``--device`` and the stepper. New tensors made
from host data (numbers, lists, NumPy arrays) land on the default device, ``Config.device``:

    with mt.using_device("cuda"):       # or: with mt.device("cuda"):  /  mt.set_default_device("cuda")
        model = zoo.get_model("lenet5")   # parameters made on the GPU
        y = model(mt.Tensor(batch))       # the host batch moves to the GPU, once, here

Layers never branch on the device: they ask ``get_array_module(x)`` for ``numpy`` or ``cupy`` and
``kernels(x)`` for the kernel module of x's device. CuPy is optional: without it everything but
"cuda" works, and asking for "cuda" says what is missing.

``mt.device`` is the function ``device`` below, which hides this module's name on the package: import the
helpers with ``from minitorch_cnn.device import ...`` (``import minitorch_cnn.device as m`` gives the function).
"""
import importlib

import numpy as np

from .config import Config

try:  # CuPy is an optional extra (pip install .[gpu])
    import cupy as _cupy
except Exception:  # ImportError, or a CUDA driver problem at import time
    _cupy = None

DEFAULT_DTYPE = np.float32
SPECS = "'cpu', 'cuda', 'cuda:N' or 'cuda-emulator'"


def gpu_available():
    """True when CuPy imports and sees at least one CUDA device."""
    return _gpu_count() > 0


def _gpu_count():
    if _cupy is None:
        return 0
    try:
        return _cupy.cuda.runtime.getDeviceCount()
    except Exception:
        return 0


class Device:
    """One place arrays can live. Build it with ``device(spec)``; compare with ``==``; print its name.

    ``xp`` is the array module (``numpy`` or ``cupy``), ``kernels`` the kernel module (kernels.cpu, or
    kernels.cuda for "cuda:N" and "cuda-emulator"), ``is_gpu`` whether arrays live in GPU memory.
    Used as a context manager it is the default device inside the block.
    """

    def __init__(self, kind, index=None):
        self.kind, self.index = kind, index                 # "cpu" | "cuda" | "cuda-emulator", GPU number
        self.name = f"cuda:{index}" if kind == "cuda" else kind
        self.is_gpu = kind == "cuda"
        self.xp = _cupy if self.is_gpu else np
        self._kernel_name = "cpu" if kind == "cpu" else "cuda"

    @property
    def kernels(self):
        return _kernel_module(self._kernel_name)

    def send(self, array):
        """``array`` on this device: itself when it is there already, else a copy moved here."""
        if not self.is_gpu:
            return to_numpy(array)
        if isinstance(array, _cupy.ndarray) and array.device.id == self.index:
            return array
        with _cupy.cuda.Device(self.index):
            return _cupy.asarray(array)

    def __eq__(self, other):
        return isinstance(other, Device) and other.name == self.name

    def __hash__(self):
        return hash(self.name)

    def __str__(self):
        return self.name

    def __repr__(self):
        return f"device({self.name!r})"

    def __enter__(self):
        _entered.append(Config.device)
        Config.device = self
        return self

    def __exit__(self, *exc):
        Config.device = _entered.pop()


_entered = []         # the devices that ``with some_device:`` blocks replaced, innermost last
CPU = Device("cpu")
_devices = {"cpu": CPU}
Config.device = CPU


def device(spec):
    """The Device named by ``spec``: a Device, or "cpu" | "cuda" | "cuda:N" | "cuda-emulator"."""
    if isinstance(spec, Device):
        return spec
    found = _devices.get(spec) if isinstance(spec, str) else None
    return found if found is not None else _new_device(spec)


def _new_device(spec):
    kind, _, index = spec.partition(":") if isinstance(spec, str) else (None, None, None)
    if kind == "cuda-emulator" and not index:
        made = Device("cuda-emulator")
    elif kind == "cuda" and (index == "" and ":" not in spec or index.isdigit()):
        count = _gpu_count()
        if count == 0:
            raise RuntimeError(f"device {spec!r} requested but CuPy or a CUDA device is not available "
                               f"(install with: pip install .[gpu]); 'cuda-emulator' runs the CUDA kernels "
                               f"on the host")
        if int(index or 0) >= count:
            raise RuntimeError(f"device {spec!r} requested but CuPy sees {count} CUDA device(s): "
                               f"cuda:0 to cuda:{count - 1}")
        made = Device("cuda", int(index or 0))
    else:
        raise ValueError(f"unknown device {spec!r}; expected {SPECS}")
    _devices[spec] = made
    return made


def get_default_device():
    """The device ``Tensor(x)`` puts host data on."""
    return Config.device


def set_default_device(spec):
    """Make ``spec`` the default device from now on (``using_device`` for one block)."""
    Config.device = device(spec)


def using_device(spec):
    """``with using_device("cuda"): ...``: new tensors and parameters go to ``spec`` inside the block,
    and the previous default comes back however the block ends. The same as ``with device(spec):``: a
    Device is itself that context manager (an unknown spec fails here, before anything changed)."""
    return device(spec)


# ---- the array helpers that kernels and layers use ----------------------------------------------

def get_array_module(*arrays):
    """``numpy`` or ``cupy``, whichever owns the given arrays (NumPy for scalars)."""
    if _cupy is not None:
        for a in arrays:
            if isinstance(a, _cupy.ndarray):
                return _cupy
    return np


def is_array(x):
    """Whether ``x`` is a NumPy or CuPy array (not a list, number or NumPy scalar)."""
    return isinstance(x, np.ndarray) or (_cupy is not None and isinstance(x, _cupy.ndarray))


def to_numpy(array):
    """A NumPy array with ``array``'s values: itself on the host, a host copy of a GPU array."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy.asnumpy(array)
    return np.asarray(array)


def device_of(array):
    """The Device ``array`` lives on. A host array counts as on "cuda-emulator" while that is the default
    (its arrays are NumPy arrays: only the default tells them apart), else on the CPU."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return device(f"cuda:{array.device.id}")
    return Config.device if Config.device.kind == "cuda-emulator" else CPU


def kernels(*arrays):
    """The kernel module (same function names on every device) for these arrays' device."""
    if get_array_module(*arrays) is not np:
        return _kernel_module("cuda")
    return Config.device.kernels if Config.device.kind == "cuda-emulator" else _kernel_module("cpu")


_kernel_modules = {}


def _kernel_module(name):
    """minitorch_cnn.kernels.<name>, imported on first use (kernels import this module) and then kept,
    so the hot path pays a dict lookup, not an import statement."""
    module = _kernel_modules.get(name)
    if module is None:
        module = _kernel_modules[name] = importlib.import_module(f"{__package__}.kernels.{name}")
    return module


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
