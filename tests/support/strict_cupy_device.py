"""The strict CuPy stand-in's device side (see strict_cupy.py, which re-exports all of this as ``cupy.random``,
``cupy.cuda``, ``cupy.RawModule``): random draws made on the device, the current-device context, and RawModule
kernels run on the project's host emulator, each launch recorded in the ledger with its call site."""
import types

import numpy as np

from . import strict_cupy as _core
from .standin_ledger import LEDGER


class _Generator:
    """``cupy.random.default_rng(seed)``: NumPy's generator, draws put on the device."""

    def __init__(self, seed=None):
        LEDGER.record("op", "random.default_rng")    # CuPy initialises the generator's state on the device
        self._rng = np.random.default_rng(seed)

    def __getattr__(self, name):
        draw = getattr(self._rng, name)
        def on_device(*args, **kwargs):
            LEDGER.record("op", f"random.{name}")
            return _core._result(draw(*args, **kwargs), _core._current[0])
        return on_device


random = types.ModuleType("cupy.random")
random.default_rng = _Generator
random.Generator = _Generator


class Device:
    """``cupy.cuda.Device(i)``: ``.id``; ``with Device(i):`` makes GPU i current; ``synchronize()`` is a no-op."""

    def __init__(self, device=None):
        self.id = _core._current[0] if device is None else int(device)
        if not 0 <= self.id < runtime.getDeviceCount():
            raise RuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {self.id}")

    def __enter__(self):
        self._previous = _core._current[0]
        _core._current[0] = self.id
        return self

    def __exit__(self, *exc):
        _core._current[0] = self._previous

    def use(self):
        _core._current[0] = self.id

    @property
    def mem_info(self):
        """(free, total) bytes of the GPU: an 80 GiB H100's total, all of it free (nothing is allocated)."""
        return runtime.DEVICE_MEMORY, runtime.DEVICE_MEMORY

    def synchronize(self):
        pass

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return self.id

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


runtime = types.ModuleType("cupy.cuda.runtime")
runtime.DEVICE_COUNT = 1
runtime.DEVICE_MEMORY = 80 << 30
runtime.getDeviceCount = lambda: runtime.DEVICE_COUNT
runtime.deviceSynchronize = lambda: None
cuda = types.ModuleType("cupy.cuda")
cuda.Device, cuda.runtime = Device, runtime


class RawModule:
    """``cupy.RawModule(code=...)``: compiled by the host emulator; its kernels take device arrays only."""

    def __init__(self, code=None, options=(), **_ignored):
        from minitorch_cnn.kernels.cuda import emulator
        self._module = emulator.RawModule(code=code, options=options)

    def get_function(self, name):
        kernel = self._module.get_function(name)
        def launch(grid, block, args, shared_mem=0, stream=None):
            for i, a in enumerate(args):
                if isinstance(a, np.ndarray):
                    LEDGER.record("host_to_kernel", f"{name} argument {i}", a.nbytes)
                    raise TypeError(f"{name}: argument {i}: Unsupported type {type(a)} (a host array)")
            LEDGER.record("launch", name)
            launches[name] = launches.get(name, 0) + 1
            return kernel(grid, block, tuple(a._host if isinstance(a, _core.ndarray) else a for a in args))
        return launch


launches = {}   # kernel name -> how many times it ran: proof that a run used the CUDA kernels
