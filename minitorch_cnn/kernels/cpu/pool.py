"""Numba kernels for pooling: max (with the winning tap remembered) and average, forward and backward.

Out-of-range taps are skipped, which is what padding with -inf (max) or zeros
(average) would give, without making the padded copy.
"""
import numpy as np
from numba import prange

from .jit import kernel


@kernel
def _max_pool_forward(x, y, argmax, kh, kw, sh, sw, ph, pw):
    n, c, h, w = x.shape
    ho, wo = y.shape[2], y.shape[3]
    for plane in prange(n * c):
        b, ci = plane // c, plane % c
        for oy in range(ho):
            for ox in range(wo):
                best, best_tap = -np.inf, -1
                for i in range(kh):
                    iy = oy * sh + i - ph
                    if iy < 0 or iy >= h:
                        continue
                    for j in range(kw):
                        ix = ox * sw + j - pw
                        if ix < 0 or ix >= w:
                            continue
                        v = x[b, ci, iy, ix]
                        if v > best or best_tap < 0 or np.isnan(v):   # first maximum wins; NaN propagates
                            best, best_tap = v, i * kw + j
                            if np.isnan(v):
                                break
                y[b, ci, oy, ox] = best
                argmax[b, ci, oy, ox] = best_tap


def max_pool_forward(x, kernel, stride, padding, out_hw):
    """x (N, C, H, W) -> (y (N, C, Ho, Wo), argmax: the winning tap i*kw + j of each window)."""
    shape = x.shape[:2] + tuple(out_hw)
    y, argmax = np.empty(shape, x.dtype), np.empty(shape, np.int32)
    work = y.size * kernel[0] * kernel[1]
    _max_pool_forward(work, np.ascontiguousarray(x), y, argmax, *kernel, *stride, *padding)
    return y, argmax


@kernel
def _max_pool_backward(gy, argmax, dx, kw, sh, sw, ph, pw):
    n, c = dx.shape[0], dx.shape[1]
    ho, wo = gy.shape[2], gy.shape[3]
    for plane in prange(n * c):
        b, ci = plane // c, plane % c
        for oy in range(ho):
            for ox in range(wo):
                t = argmax[b, ci, oy, ox]
                dx[b, ci, oy * sh + t // kw - ph, ox * sw + t % kw - pw] += gy[b, ci, oy, ox]


def max_pool_backward(gy, argmax, x_shape, kernel, stride, padding):
    """gy (N, C, Ho, Wo) -> dx (N, C, H, W): each gradient goes to the tap that won its window."""
    dx = np.zeros(x_shape, dtype=gy.dtype)
    _max_pool_backward(dx.size, np.ascontiguousarray(gy), argmax, dx, kernel[1], *stride, *padding)
    return dx


@kernel
def _avg_pool_forward(x, y, divisor, kh, kw, sh, sw, ph, pw):
    n, c, h, w = x.shape
    ho, wo = y.shape[2], y.shape[3]
    for plane in prange(n * c):
        b, ci = plane // c, plane % c
        for oy in range(ho):
            for ox in range(wo):
                acc = 0.0
                for i in range(kh):
                    iy = oy * sh + i - ph
                    if iy < 0 or iy >= h:
                        continue
                    for j in range(kw):
                        ix = ox * sw + j - pw
                        if 0 <= ix < w:
                            acc += x[b, ci, iy, ix]
                y[b, ci, oy, ox] = acc / divisor[oy, ox]


def avg_pool_forward(x, kernel, stride, padding, out_hw, divisor):
    """x (N, C, H, W) -> (N, C, Ho, Wo): each window's sum over ``divisor`` (an (Ho, Wo) array)."""
    y = np.empty(x.shape[:2] + tuple(out_hw), x.dtype)
    _avg_pool_forward(y.size * kernel[0] * kernel[1], np.ascontiguousarray(x), y, _as_map(divisor, out_hw, x.dtype),
                      *kernel, *stride, *padding)
    return y


@kernel
def _avg_pool_backward(gy, dx, divisor, kh, kw, sh, sw, ph, pw):
    n, c, h, w = dx.shape
    ho, wo = gy.shape[2], gy.shape[3]
    for plane in prange(n * c):
        b, ci = plane // c, plane % c
        for oy in range(ho):
            for ox in range(wo):
                g = gy[b, ci, oy, ox] / divisor[oy, ox]
                for i in range(kh):
                    iy = oy * sh + i - ph
                    if iy < 0 or iy >= h:
                        continue
                    for j in range(kw):
                        ix = ox * sw + j - pw
                        if 0 <= ix < w:
                            dx[b, ci, iy, ix] += g


def avg_pool_backward(gy, x_shape, kernel, stride, padding, divisor):
    """gy (N, C, Ho, Wo) -> dx (N, C, H, W): each window's gradient shared evenly over its taps."""
    dx = np.zeros(x_shape, dtype=gy.dtype)
    _avg_pool_backward(gy.size * kernel[0] * kernel[1], np.ascontiguousarray(gy), dx,
                       _as_map(divisor, gy.shape[2:], gy.dtype), *kernel, *stride,
                       *padding)
    return dx


def _as_map(divisor, out_hw, dtype):
    return np.ascontiguousarray(np.broadcast_to(np.asarray(divisor, dtype=dtype), tuple(out_hw)))
