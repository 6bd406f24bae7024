"""Numba kernels for convolution: im2col / col2im (the depthwise kernels are in depthwise.py).

Each kernel loops over output rows of one (image, channel) plane, or one im2col
row, in parallel (``prange``); bounds checks replace explicit zero padding, so
no padded copy of the input is ever made.
"""
import numpy as np
from numba import njit, prange

from .jit import kernel


@njit(cache=True)
def _valid_range(count, offset, stride, size):
    """Output positions x in [0, count) with 0 <= x*stride + offset < size, as [lo, hi)."""
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride
    hi = count
    last = size - 1 - offset
    if last < 0:
        return lo, lo
    hi = min(count, last // stride + 1)
    return lo, max(lo, hi)


@kernel
def _im2col(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo):
    n, c, h, w = x.shape
    for r in prange(c * kh * kw):
        ci, i, j = r // (kh * kw), (r // kw) % kh, r % kw
        off = j * dw - pw
        x_lo, x_hi = _valid_range(wo, off, sw, w)
        c_row = cols[r]
        # Scalar loops with unsigned indices, not slice copies: a slice builds an array view per output row
        # (64 * 28 * 75 of them for LeNet's first layer), which made this 5x slower than a memory copy.
        for b in range(n):
            for y in range(ho):
                iy = y * sh + i * dh - ph
                row = b * ho * wo + y * wo
                if iy < 0 or iy >= h:
                    for xx in range(wo):
                        c_row[np.uintp(row + xx)] = 0
                    continue
                x_row = x[b, ci, iy]
                for xx in range(x_lo):
                    c_row[np.uintp(row + xx)] = 0
                if sw == 1:   # unit stride: a contiguous copy the compiler vectorises
                    for xx in range(x_lo, x_hi):
                        c_row[np.uintp(row + xx)] = x_row[np.uintp(xx + off)]
                else:
                    for xx in range(x_lo, x_hi):
                        c_row[np.uintp(row + xx)] = x_row[np.uintp(xx * sw + off)]
                for xx in range(x_hi, wo):
                    c_row[np.uintp(row + xx)] = 0


def im2col(x, kernel, stride, padding, dilation, out_hw, out=None):
    """x: (N, C, H, W) -> cols (C*kh*kw, N*Ho*Wo) (into ``out`` when given), padding by bounds checks."""
    n, c = x.shape[:2]
    shape = (c * kernel[0] * kernel[1], n * out_hw[0] * out_hw[1])
    cols = np.empty(shape, dtype=x.dtype) if out is None else out
    _im2col(cols.size, np.ascontiguousarray(x), cols, *kernel, *stride, *padding, *dilation, *out_hw)
    return cols


@kernel
def _col2im(cols, dx, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo):
    n, c, h, w = dx.shape
    for plane in prange(n * c):   # one (image, channel) plane per iteration: no two write the same pixel
        b, ci = plane // c, plane % c
        for i in range(kh):
            for j in range(kw):
                r = (ci * kh + i) * kw + j
                x_lo, x_hi = _valid_range(wo, j * dw - pw, sw, w)
                for y in range(ho):
                    iy = y * sh + i * dh - ph
                    if iy < 0 or iy >= h:
                        continue
                    row, off = b * ho * wo + y * wo, j * dw - pw
                    dx_row, c_row = dx[b, ci, iy], cols[r]
                    if sw == 1:   # unsigned indices and unit stride: a loop the compiler vectorises
                        for xx in range(x_lo, x_hi):
                            dx_row[np.uintp(xx + off)] += c_row[np.uintp(row + xx)]
                    else:
                        for xx in range(x_lo, x_hi):
                            dx_row[np.uintp(xx * sw + off)] += c_row[np.uintp(row + xx)]


def col2im(cols, x_shape, kernel, stride, padding, dilation, out_hw):
    """cols (C*kh*kw, N*Ho*Wo) -> dx (N, C, H, W), overlapping windows summed."""
    dx = np.zeros(x_shape, dtype=cols.dtype)
    _col2im(cols.size, np.ascontiguousarray(cols), dx, *kernel, *stride, *padding, *dilation, *out_hw)
    return dx
