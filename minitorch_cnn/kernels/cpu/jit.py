"""Compile each Numba loop nest twice: threaded (``prange``) for big arrays, serial for small ones.

Starting the thread pool costs about a millisecond a call, more on a busy
machine; for a tiny convolution (a gradient check, LeNet's last layers) that
is most of the time. The two copies get different names so Numba's on-disk
cache keeps them apart.
"""
import types

from numba import njit

PARALLEL_FROM = 1 << 16   # elements of work from which threads pay for themselves


class Kernel:
    def __init__(self, fn):
        serial_fn = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial", fn.__defaults__,
                                       fn.__closure__)
        serial_fn.__qualname__ = fn.__qualname__ + "_serial"
        self.parallel = njit(parallel=True, cache=True)(fn)
        self.serial = njit(cache=True)(serial_fn)

    def __call__(self, work, *args):
        return (self.parallel if work >= PARALLEL_FROM else self.serial)(*args)


def kernel(fn):
    """Decorator: ``fn`` becomes a Kernel, called as ``fn(work, *args)``."""
    return Kernel(fn)
