"""Compile each Numba loop nest twice: threaded (``prange``) for big arrays, serial for small ones.

Starting the thread pool costs about a millisecond a call, more on a busy
machine; for a tiny convolution (a gradient check, LeNet's last layers) that
is most of the time. The two copies get different names so Numba's on-disk
cache keeps them apart.

So every kernel decorated with ``@kernel`` takes one more argument than it is
defined with: a hidden leading *work size* (roughly the number of elements it
touches) that picks the copy and is not passed on. A kernel defined as
``_im2col(x, cols, kh, ...)`` is called as ``_im2col(cols.size, x, cols, kh, ...)``;
from ``PARALLEL_FROM`` elements of work on it runs threaded.
"""
import os
import types

import numba
from numba import njit

# Numba's threading layer is chosen at the package's import (minitorch_cnn/_numba_threads.py says which and why),
# before anything here or elsewhere (zoo's provenance asks Numba for its thread count) starts Numba's threads.
from ..._numba_threads import LAYER


def _numba_accepts(layer):
    """The chosen layer, or workqueue where Numba refuses the TBB it was given (a version it does not support)."""
    if layer != "tbb":
        return layer
    try:
        from numba.np.ufunc import tbbpool  # noqa: F401
        from numba.np.ufunc.parallel import _check_tbb_version_compatible
        _check_tbb_version_compatible()
        return layer
    except (ImportError, ValueError):
        return "workqueue"


# in case Numba was imported before the package chose, or refuses its choice
numba.config.THREADING_LAYER = os.environ["NUMBA_THREADING_LAYER"] = _numba_accepts(LAYER)

# Elements of work from which the threaded copy runs. Handing a loop to Numba's threads and back costs
# ~60-100 us here (2 cores, workqueue): ReLU over 0.26 M floats took 168 us threaded against 50 us serial,
# over 1 M 457 against 335, over 2 M 508 against 601; batch norm's forward breaks even at ~0.5 M. At 64 k
# (until 2026-12-07) LeNet-5's step measured 9.1-9.8 ms (median 10.6), at 1 M 8.0-8.7 (9.1-9.6); MobileNetV1/V2
# and ResNet-18 the same within the noise, once batch norm counts its work fourfold (kernels/cpu/norm.py).
# A kernel whose elements cost more passes a larger work. (The tests lower it, tests/conftest.py, so that
# their moderate sizes run the threaded copies too.)
PARALLEL_FROM = 1 << 20


class Kernel:
    def __init__(self, fn, fastmath=False):
        serial_fn = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial", fn.__defaults__,
                                       fn.__closure__)
        serial_fn.__qualname__ = fn.__qualname__ + "_serial"
        self.parallel = njit(parallel=True, cache=True, fastmath=fastmath)(fn)
        # nogil: the serial copy may run in several Python threads at once (kernels/cpu/winograd.py)
        self.serial = njit(cache=True, nogil=True, fastmath=fastmath)(serial_fn)

    def __call__(self, work, *args):
        return (self.parallel if work >= PARALLEL_FROM else self.serial)(*args)


# LLVM keeps a float sum in source order unless allowed to reassociate it, and so cannot split it over
# vector lanes: ``@kernel(fastmath=REASSOC)`` allows only that (NaN and infinity keep their meaning). Only
# the rounding of a sum changes, as between any two summation orders.
REASSOC = {"reassoc"}


def kernel(fn=None, *, fastmath=False):
    """Decorator: ``fn(*args)`` becomes a Kernel, called as ``fn(work, *args)`` (see the module docstring).

    ``@kernel(fastmath=REASSOC)`` passes Numba's ``fastmath`` flags on to both copies.
    """
    if fn is None:
        return lambda f: Kernel(f, fastmath)
    return Kernel(fn)
