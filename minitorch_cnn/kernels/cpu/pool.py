"""Numba kernels for pooling: max (with the winning tap remembered) and average, forward and backward.

Out-of-range taps are skipped, which is what padding with -inf (max) or zeros
(average) would give, without making the padded copy.
"""
import numpy as np
from numba import prange

from .conv import _valid_range
from .jit import kernel


@kernel
def _max_pool_forward(x, y, argmax, kh, kw, sh, sw, ph, pw):
    n, c, h, w = x.shape
    ho, wo = y.shape[2], y.shape[3]
    for plane in prange(n * c):
        b, ci = plane // c, plane % c
        x_plane = x[b, ci]   # views made once per plane: a view per window costs more than the window
        for oy in range(ho):
            y_row, a_row = y[b, ci, oy], argmax[b, ci, oy]
            if sw != 1:   # strided windows (2x2 stride 2): one window at a time
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
                            v = x_plane[iy, ix]
                            # larger, or the first NaN (NaN propagates), or the window's first real tap
                            if v > best or best_tap < 0 or (v != v and best == best):
                                best, best_tap = v, i * kw + j
                    y_row[ox], a_row[ox] = best, best_tap
                continue
            # Unit stride (Inception's 3x3 pools): taps outer, output columns inner, the running maximum
            # kept in the output row: branch-free selects over contiguous memory, which vectorise, where
            # one overlapping window at a time re-reads each pixel kh*kw times through branches.
            y_row[:] = -np.inf
            a_row[:] = -1
            for i in range(kh):
                iy = oy * sh + i - ph
                if iy < 0 or iy >= h:
                    continue
                x_row = x_plane[iy]
                for j in range(kw):
                    off, tap = j - pw, i * kw + j
                    x_lo, x_hi = _valid_range(wo, off, 1, w)
                    for ox in range(x_lo, x_hi):
                        v, best, won = x_row[np.uintp(ox + off)], y_row[np.uintp(ox)], a_row[np.uintp(ox)]
                        take = (v > best) | ((v != v) & (best == best)) | (won < 0)   # the same rule
                        y_row[np.uintp(ox)] = v if take else best
                        a_row[np.uintp(ox)] = tap if take else won


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
        dx_plane = dx[b, ci]
        for oy in range(ho):
            g_row, a_row = gy[b, ci, oy], argmax[b, ci, oy]
            for ox in range(wo):   # a winning tap is always inside the input: unsigned indices are safe
                t = a_row[np.uintp(ox)]
                dx_plane[np.uintp(oy * sh + t // kw - ph), np.uintp(ox * sw + t % kw - pw)] += g_row[np.uintp(ox)]


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
        acc = np.empty(wo, y.dtype)   # one output row's sums; element loops, not row slices: rows are short
        for oy in range(ho):          # (LeNet's 14 and 5 columns), and a slice's set-up cost more than its copy
            for ox in range(wo):
                acc[ox] = 0
            for i in range(kh):       # taps outer, output columns inner, as in max pooling: a loop that vectorises
                iy = oy * sh + i - ph
                if iy < 0 or iy >= h:
                    continue
                for j in range(kw):
                    x_lo, x_hi = _valid_range(wo, j - pw, sw, w)
                    for ox in range(x_lo, x_hi):
                        acc[np.uintp(ox)] += x[b, ci, iy, np.uintp(ox * sw + j - pw)]
            for ox in range(wo):
                y[b, ci, oy, ox] = acc[ox] / divisor[oy, ox]


def avg_pool_forward(x, kernel, stride, padding, out_hw, divisor):
    """x (N, C, H, W) -> (N, C, Ho, Wo): each window's sum over ``divisor`` (an (Ho, Wo) array)."""
    y = np.empty(x.shape[:2] + tuple(out_hw), x.dtype)
    _avg_pool_forward(y.size * kernel[0] * kernel[1], np.ascontiguousarray(x), y, _as_map(divisor, out_hw, x.dtype),
                      *kernel, *stride, *padding)
    return y


@kernel
def _avg_pool_backward(g, dx, kh, kw, sh, sw, ph, pw):
    n, c, h, w = dx.shape
    ho, wo = g.shape[2], g.shape[3]
    for plane in prange(n * c):
        b, ci = plane // c, plane % c
        for oy in range(ho):
            g_row = g[b, ci, oy]
            for i in range(kh):
                iy = oy * sh + i - ph
                if iy < 0 or iy >= h:
                    continue
                dx_row = dx[b, ci, iy]
                for j in range(kw):
                    x_lo, x_hi = _valid_range(wo, j - pw, sw, w)
                    for ox in range(x_lo, x_hi):
                        dx_row[np.uintp(ox * sw + j - pw)] += g_row[np.uintp(ox)]


def avg_pool_backward(gy, x_shape, kernel, stride, padding, divisor):
    """gy (N, C, Ho, Wo) -> dx (N, C, H, W): each window's gradient shared evenly over its taps."""
    dx = np.zeros(x_shape, dtype=gy.dtype)
    g = np.ascontiguousarray(gy / _as_map(divisor, gy.shape[2:], gy.dtype))   # each window's share, divided once
    _avg_pool_backward(gy.size * kernel[0] * kernel[1], g, dx, *kernel, *stride, *padding)
    return dx


def _as_map(divisor, out_hw, dtype):
    return np.ascontiguousarray(np.broadcast_to(np.asarray(divisor, dtype=dtype), tuple(out_hw)))
