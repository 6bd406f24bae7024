"""Numba kernels for convolution: im2col / col2im and the depthwise forward and backward.

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


@kernel
def _depthwise_forward(x, w, y, sh, sw, ph, pw, dh, dw):
    n, c, h, wd = x.shape
    cm, _, kh, kw = w.shape
    m = cm // c
    ho, wo = y.shape[2], y.shape[3]
    for plane in prange(n * cm):
        b, o = plane // cm, plane % cm
        ci = o // m
        for y_ in range(ho):
            y_row = y[b, o, y_]
            for i in range(kh):
                iy = y_ * sh + i * dh - ph
                if iy < 0 or iy >= h:
                    continue
                x_row = x[b, ci, iy]
                for j in range(kw):
                    wv, off = w[o, 0, i, j], j * dw - pw
                    x_lo, x_hi = _valid_range(wo, off, sw, wd)
                    # Unsigned indices skip Numba's negative-index check; with unit stride the loop
                    # is then contiguous and the compiler vectorises it.
                    if sw == 1:
                        for xx in range(x_lo, x_hi):
                            y_row[np.uintp(xx)] += wv * x_row[np.uintp(xx + off)]
                    else:
                        for xx in range(x_lo, x_hi):
                            y_row[np.uintp(xx)] += wv * x_row[np.uintp(xx * sw + off)]


def depthwise_forward(x, w, stride, padding, dilation, out_hw):
    """x (N, C, H, W), w (C*m, 1, kh, kw) -> (N, C*m, Ho, Wo)."""
    y = np.zeros((x.shape[0], w.shape[0]) + tuple(out_hw), dtype=x.dtype)
    _depthwise_forward(y.size * w.shape[2] * w.shape[3], np.ascontiguousarray(x), np.ascontiguousarray(w), y,
                       *stride, *padding, *dilation)
    return y


@kernel
def _depthwise_backward_input(gy, w, dx, sh, sw, ph, pw, dh, dw):
    n, c, h, wd = dx.shape
    cm, _, kh, kw = w.shape
    m = cm // c
    ho, wo = gy.shape[2], gy.shape[3]
    for plane in prange(n * c):   # one input plane per iteration: its m output planes add into it
        b, ci = plane // c, plane % c
        for o in range(ci * m, ci * m + m):
            for y_ in range(ho):
                g_row = gy[b, o, y_]
                for i in range(kh):
                    iy = y_ * sh + i * dh - ph
                    if iy < 0 or iy >= h:
                        continue
                    dx_row = dx[b, ci, iy]
                    for j in range(kw):
                        wv, off = w[o, 0, i, j], j * dw - pw
                        x_lo, x_hi = _valid_range(wo, off, sw, wd)
                        if sw == 1:
                            for xx in range(x_lo, x_hi):
                                dx_row[np.uintp(xx + off)] += wv * g_row[np.uintp(xx)]
                        else:
                            for xx in range(x_lo, x_hi):
                                dx_row[np.uintp(xx * sw + off)] += wv * g_row[np.uintp(xx)]


@kernel
def _depthwise_backward_weight(gy, x, dwt, sh, sw, ph, pw, dh, dw):
    n, c, h, wd = x.shape
    cm, _, kh, kw = dwt.shape
    m = cm // c
    ho, wo = gy.shape[2], gy.shape[3]
    for o in prange(cm):   # one filter per iteration: the sum runs over every image and position
        ci = o // m
        # One partial sum per output column: adding whole rows into it has no loop-carried
        # dependency, so it vectorises, where a single scalar accumulator would not.
        partial = np.zeros(wo, np.float64)
        for i in range(kh):
            for j in range(kw):
                off = j * dw - pw
                x_lo, x_hi = _valid_range(wo, off, sw, wd)
                partial[:] = 0.0
                for b in range(n):
                    for y_ in range(ho):
                        iy = y_ * sh + i * dh - ph
                        if iy < 0 or iy >= h:
                            continue
                        g_row, x_row = gy[b, o, y_], x[b, ci, iy]
                        if sw == 1:
                            for xx in range(x_lo, x_hi):
                                partial[np.uintp(xx)] += g_row[np.uintp(xx)] * x_row[np.uintp(xx + off)]
                        else:
                            for xx in range(x_lo, x_hi):
                                partial[np.uintp(xx)] += g_row[np.uintp(xx)] * x_row[np.uintp(xx * sw + off)]
                dwt[o, 0, i, j] = partial.sum()


def depthwise_backward(gy, x, w, stride, padding, dilation, need_dx=True):
    """gy (N, C*m, Ho, Wo) -> (dx (N, C, H, W) or None, dw (C*m, 1, kh, kw))."""
    gy, x, w = np.ascontiguousarray(gy), np.ascontiguousarray(x), np.ascontiguousarray(w)
    dw = np.empty_like(w)
    work = gy.size * w.shape[2] * w.shape[3]
    _depthwise_backward_weight(work, gy, x, dw, *stride, *padding, *dilation)
    dx = None
    if need_dx:
        dx = np.zeros_like(x)
        _depthwise_backward_input(work, gy, w, dx, *stride, *padding, *dilation)
    return dx, dw
