"""Numba kernel for ReLU and ReLU6: output and derivative mask in one parallel pass.

NumPy needs three passes and two temporaries for the same (compare, multiply or
clip, and a second compare for ReLU6's upper bound).
"""
import numpy as np
from numba import prange

from .jit import kernel


@kernel
def _clamp(x, y, mask, high, bounded):
    for i in prange(x.size):
        v = x[i]
        if v > 0 and (not bounded or v < high):
            y[i], mask[i] = v, True
        elif v > 0:
            y[i], mask[i] = high, False
        else:   # v <= 0, or NaN (which compares false and is kept)
            y[i], mask[i] = (v if v != v else 0.0), False


def clamp_forward(x, high=None):
    """As ``reference.clamp_forward``: (min(max(x, 0), high), mask of 0 < x < high)."""
    flat = np.ascontiguousarray(x).reshape(-1)
    y, mask = np.empty_like(flat), np.empty(flat.shape, np.bool_)
    _clamp(flat.size, flat, y, mask, np.inf if high is None else float(high), high is not None)
    return y.reshape(x.shape), mask.reshape(x.shape)
