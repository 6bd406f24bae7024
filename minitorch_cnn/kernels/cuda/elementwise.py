"""GPU wrapper for elementwise.cu: ReLU / ReLU6 output and derivative mask in one pass.

Same name and signature as ``kernels/cpu``; the backward (gy * mask) is one array multiply.
"""
import numpy as np

from ...backend import get_array_module
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
