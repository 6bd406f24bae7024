"""GPU wrappers for elementwise.cu: ReLU / ReLU6 output (alone, or with the derivative mask in one pass),
and the backward from the output. Same names and signatures as ``kernels/cpu``.
"""
import numpy as np

from ...device import get_array_module
from .launch import elementwise, load_kernel


def clamp_forward(x, high=None):
    """As ``reference.clamp_forward``: (min(max(x, 0), high), mask of 0 < x < high)."""
    xp = get_array_module(x)
    flat = xp.ascontiguousarray(x).reshape(-1)
    y, mask = xp.empty_like(flat), xp.empty(flat.shape, xp.bool_)
    bound = flat.dtype.type(0 if high is None else high)
    elementwise(load_kernel("elementwise", "clamp_forward", flat.dtype, flat), flat.size,
                (flat, y, mask, np.int64(flat.size), bound, np.int32(high is not None)))
    return y.reshape(x.shape), mask.reshape(x.shape)


def clamp(x, high=None, out=None):
    """As ``reference.clamp``: min(max(x, 0), high), no mask, into ``out`` (x itself: in place) or a new array."""
    xp = get_array_module(x)
    bound = x.dtype.type(0 if high is None else high)
    if out is x and x.flags.c_contiguous:   # its own kernel: x and y of clamp are restrict pointers, never one array
        flat = x.reshape(-1)
        elementwise(load_kernel("elementwise", "clamp_in_place", flat.dtype, flat), flat.size,
                    (flat, np.int64(flat.size), bound, np.int32(high is not None)))
        return x
    flat = xp.ascontiguousarray(x).reshape(-1)
    y = xp.empty_like(flat) if out is None else out.reshape(-1)   # a contiguous out of x's shape: a view
    elementwise(load_kernel("elementwise", "clamp", flat.dtype, flat), flat.size,
                (flat, y, np.int64(flat.size), bound, np.int32(high is not None)))
    return y.reshape(x.shape) if out is None else out


def clamp_backward(gy, y, high=None):
    """As ``reference.clamp_backward``: gy where 0 < y < high, else 0."""
    xp = get_array_module(y)
    flat = xp.ascontiguousarray(y).reshape(-1)
    gy_flat = xp.ascontiguousarray(gy, dtype=flat.dtype).reshape(-1)
    gx = xp.empty_like(flat)
    bound = flat.dtype.type(0 if high is None else high)
    elementwise(load_kernel("elementwise", "clamp_backward", flat.dtype, flat), flat.size,
                (gy_flat, flat, gx, np.int64(flat.size), bound, np.int32(high is not None)))
    return gx.reshape(y.shape)
