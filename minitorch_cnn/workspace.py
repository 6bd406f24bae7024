"""Scratch memory that outlives one call: a growing buffer per name, device and dtype.

The first write to a freshly allocated page costs about a microsecond here, so
a 150 MB im2col matrix allocated anew for every convolution of every step
spends ~16 ms just faulting pages in. Convolutions instead borrow their column
matrix from here: one buffer, as large as the largest convolution needs, reused
by every layer and every step. Borrowed views are valid until the next borrow
of the same name, so a borrower must be done with it before calling anyone who
might borrow it too.
"""
import functools
import math
import weakref

import numpy as np

_buffers = {}


def borrow(name, shape, dtype, xp):
    """An uninitialised array of ``shape`` backed by the shared buffer ``name``."""
    size = math.prod(shape)
    key = (name, xp.__name__, str(dtype))
    buf = _buffers.get(key)
    if buf is None or buf.size < size:
        _buffers.pop(key, None)       # let the old buffer go before allocating the bigger one
        buf = _buffers[key] = xp.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)


# A Function may keep a scratch matrix for its backward instead of rebuilding it there (im2col's columns)
# while all such matrices held at once stay within a budget per memory: on the host, KEEP_BYTES (LeNet-5's
# two at batch 64, 15 MB and 4 MB, fit; GoogLeNet's 5x5 columns, one per layer until backward, would add
# tens of MB and mostly do not); on a GPU, GPU_KEEP_FRACTION of the device's memory (ResNet-18's columns at
# batch 128, about 2 GB, fit an 80 GB H100's 10 GB: rebuilding them in backward costs an im2col launch per
# layer and a GEMM's worth of memory traffic, and GPU memory is there to hold them).
KEEP_BYTES = 24 << 20
GPU_KEEP_FRACTION = 1 / 8
_kept_bytes = {}   # "numpy" / "cupy" -> bytes held by keep arrays still alive


def keep_budget(xp):
    """How many bytes ``keep`` may hold at once in the memory of array module ``xp`` (numpy or cupy)."""
    if xp is np:
        return KEEP_BYTES
    return int(_gpu_total_bytes(xp, xp.cuda.Device().id) * GPU_KEEP_FRACTION)


@functools.cache
def _gpu_total_bytes(xp, device_id):
    """A GPU's total memory: asked of the driver once, not on every ``keep`` (every training conv forward)."""
    return xp.cuda.Device(device_id).mem_info[1]


def keep(shape, dtype, xp):
    """A fresh array of ``shape`` to hold from forward to backward, or None when it would take the arrays
    held so far in that memory past ``keep_budget(xp)``. Its bytes count until it is freed (after backward,
    or with a graph that never ran one): a finalizer gives them back, so an abandoned graph cannot use the
    budget up."""
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    pool = xp.__name__
    if _kept_bytes.get(pool, 0) + nbytes > keep_budget(xp):
        return None
    array = xp.empty(shape, dtype=dtype)
    _kept_bytes[pool] = _kept_bytes.get(pool, 0) + nbytes
    weakref.finalize(array, _give_back, pool, nbytes)
    return array


def kept_bytes(xp=np):
    """Bytes held by ``keep`` arrays still alive in the memory of ``xp`` (the host's by default)."""
    return _kept_bytes.get(xp.__name__, 0)


def _give_back(pool, nbytes):
    _kept_bytes[pool] -= nbytes
