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


def clamp(x, high=None):
    """As ``reference.clamp``: min(max(x, 0), high), no mask."""
    xp = get_array_module(x)
    flat = xp.ascontiguousarray(x).reshape(-1)
    y = xp.empty_like(flat)
    bound = flat.dtype.type(0 if high is None else high)
    elementwise(load_kernel("elementwise", "clamp", flat.dtype, flat), flat.size,
                (flat, y, np.int64(flat.size), bound, np.int32(high is not None)))
    return y.reshape(x.shape)


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
