"""Scratch memory that outlives one call: a growing buffer per name, device and dtype.

The first write to a freshly allocated page costs about a microsecond here, so
a 150 MB im2col matrix allocated anew for every convolution of every step
spends ~16 ms just faulting pages in. Convolutions instead borrow their column
matrix from here: one buffer, as large as the largest convolution needs, reused
by every layer and every step. Borrowed views are valid until the next borrow
of the same name, so a borrower must be done with it before calling anyone who
might borrow it too.
"""
import math

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
# when it is at most this large: LeNet-5's at batch 64 (15 MB, 4 MB) are; VGG's and GoogLeNet's 5x5 ones
# (up to hundreds of MB each, one per layer until backward) are not, and are rebuilt.
KEEP_BYTES = 16 << 20


def fits_kept(size, dtype):
    """Whether ``size`` elements of ``dtype`` are small enough to keep from forward to backward."""
    return size * dtype.itemsize <= KEEP_BYTES
