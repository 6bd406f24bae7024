"""Numba kernels for the direct convolution: stride 1, groups 1, few filters (functional/conv.conv_path).

No column matrix: each output plane is accumulated tap by tap straight from the input plane. The trick
that makes the inner loop long and contiguous is to compute each output plane *wide*: as rows of the
padded input's width Wp instead of Wo, so that output pixel k = oy*Wp + ox reads input pixel
k + i*dh*Wp + j*dw for tap (i, j) whatever its row. The Wp - Wo extra columns of each row are garbage
and are dropped when the plane is copied out (forward), or are zeros of dY widened the same way
(backward), adding nothing. The loops then run over (Ho-1)*Wp + Wo consecutive pixels (LeNet-5's first
layer: 892) instead of Ho rows of Wo (28 each: shorter than one step of the compiler's vector loop, 4
vectors of 8 floats, so all 28 would run in its scalar remainder).

Shapes: xf (N, C, Hp*Wp), the zero-padded input with each plane flattened; w (F, C, kh, kw);
a wide plane holds ``length`` = (Ho-1)*Wp + Wo pixels.
"""
import numpy as np
from numba import prange

from .jit import REASSOC, kernel

# Multiplies and adds may fuse into FMAs (one rounding instead of two, as in any BLAS); the weight
# gradient's sums may also be reordered, so that they split over vector lanes (jit.REASSOC).
CONTRACT, REASSOC_CONTRACT = {"contract"}, REASSOC | {"contract"}


@kernel(fastmath=CONTRACT)
def _direct_forward(xf, w, b, y, wp, dh, dw):
    n, c = xf.shape[0], xf.shape[1]
    f, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    ho, wo = y.shape[2], y.shape[3]
    length = (ho - 1) * wp + wo
    # unsigned tap spacings: an unsigned index plus a signed int is a float in Numba's typing
    d1, d2, d3, d4 = np.uintp(dw), np.uintp(2 * dw), np.uintp(3 * dw), np.uintp(4 * dw)
    for plane in prange(n * f):
        bi, fi = plane // f, plane % f
        acc = np.empty(length, y.dtype)    # one wide output plane: a few kB, in L1 through all C*kh*kw taps
        acc[:] = b[fi]
        for ci in range(c):
            x_plane = xf[bi, ci]
            for i in range(kh):
                # Up to 5 taps of a kernel row per pass over acc: one load and one store of acc per 5
                # multiply-adds instead of per one (those loads and stores bound a pass, not the arithmetic).
                j = 0
                while j < kw:
                    o = i * dh * wp + j * dw
                    if j + 4 < kw:
                        w0, w1, w2, w3, w4 = w[fi, ci, i, j], w[fi, ci, i, j + 1], w[fi, ci, i, j + 2], \
                            w[fi, ci, i, j + 3], w[fi, ci, i, j + 4]
                        for k in range(length):   # unsigned indices: a loop the compiler vectorises
                            q = np.uintp(k + o)
                            acc[np.uintp(k)] += (w0 * x_plane[q] + w1 * x_plane[q + d1] + w2 * x_plane[q + d2]
                                                 + w3 * x_plane[q + d3] + w4 * x_plane[q + d4])
                        j += 5
                    elif j + 2 < kw:
                        w0, w1, w2 = w[fi, ci, i, j], w[fi, ci, i, j + 1], w[fi, ci, i, j + 2]
                        for k in range(length):
                            q = np.uintp(k + o)
                            acc[np.uintp(k)] += w0 * x_plane[q] + w1 * x_plane[q + d1] + w2 * x_plane[q + d2]
                        j += 3
                    else:
                        w0 = w[fi, ci, i, j]
                        for k in range(length):
                            acc[np.uintp(k)] += w0 * x_plane[np.uintp(k + o)]
                        j += 1
        for oy in range(ho):                  # drop the Wp - Wo garbage columns of each row
            y[bi, fi, oy, :] = acc[oy * wp:oy * wp + wo]


def direct_conv(x, w, b, padding, dilation, out_hw):
    """x (N, C, H, W), w (F, C, kh, kw), b (F,) or None -> y (N, F, Ho, Wo), stride 1."""
    xf = pad_flat(x, padding)
    y = np.empty((x.shape[0], w.shape[0]) + tuple(out_hw), x.dtype)
    bias = np.zeros(w.shape[0], x.dtype) if b is None else np.ascontiguousarray(b, dtype=x.dtype)
    work = y.size * w.shape[1] * w.shape[2] * w.shape[3]
    _direct_forward(work, xf, np.ascontiguousarray(w), bias, y, x.shape[3] + 2 * padding[1], *dilation)
    return y


def pad_flat(x, padding):
    """x (N, C, H, W) -> (N, C, Hp*Wp), zero-padded by ``padding``: a view when there is no padding."""
    (n, c, h, wd), (ph, pw) = x.shape, padding
    if ph == 0 and pw == 0:
        return np.ascontiguousarray(x).reshape(n, c, h * wd)
    xf = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), x.dtype)
    xf[:, :, ph:ph + h, pw:pw + wd] = x
    return xf.reshape(n, c, -1)


@kernel
def _direct_data_grad(gyw, w, dxf, wp, dh, dw, length):
    n, c, f = dxf.shape[0], dxf.shape[1], w.shape[0]
    kh, kw = w.shape[2], w.shape[3]
    # One tap per pass (not the forward's 5): this runs only where the input needs a gradient, not in a
    # network's first layer, the one the direct path is for.
    for plane in prange(n * c):   # one (image, channel) plane of dx per iteration: no two write the same pixel
        bi, ci = plane // c, plane % c
        dx_plane = dxf[bi, ci]
        for fi in range(f):
            g_plane = gyw[bi, fi]
            for i in range(kh):
                for j in range(kw):
                    wv, off = w[fi, ci, i, j], i * dh * wp + j * dw
                    for k in range(length):
                        dx_plane[np.uintp(k + off)] += wv * g_plane[np.uintp(k)]


@kernel(fastmath=REASSOC_CONTRACT)
def _direct_weight_grad(gyw, xf, dw_out, wp, dh, dw, length):
    n, c = xf.shape[0], xf.shape[1]
    f, kh, kw = dw_out.shape[0], dw_out.shape[2], dw_out.shape[3]
    d1, d2 = np.uintp(dw), np.uintp(2 * dw)   # unsigned, as in _direct_forward
    for pair in prange(f * c):    # one (filter, channel) pair: its kh*kw sums over every image and pixel
        fi, ci = pair // c, pair % c
        sums = np.zeros((kh, kw), dw_out.dtype)
        for bi in range(n):       # images outer: both planes stay in L1 through all the taps
            g_plane, x_plane = gyw[bi, fi], xf[bi, ci]
            for i in range(kh):
                j = 0
                while j < kw:     # up to 3 taps' sums per pass: each dY pixel loaded once for all of them
                    o = i * dh * wp + j * dw
                    if j + 2 < kw:   # running sums read from the array: of its dtype, not float64
                        s0, s1, s2 = sums[i, j], sums[i, j + 1], sums[i, j + 2]
                        for k in range(length):
                            g, q = g_plane[np.uintp(k)], np.uintp(k + o)
                            s0 += g * x_plane[q]
                            s1 += g * x_plane[q + d1]
                            s2 += g * x_plane[q + d2]
                        sums[i, j], sums[i, j + 1], sums[i, j + 2] = s0, s1, s2
                        j += 3
                    else:
                        s0 = sums[i, j]
                        for k in range(length):
                            s0 += g_plane[np.uintp(k)] * x_plane[np.uintp(k + o)]
                        sums[i, j] = s0
                        j += 1
        dw_out[fi, ci] = sums


def direct_conv_backward(gy, x, w, padding, dilation, need_dx=True):
    """gy (N, F, Ho, Wo), x (N, C, H, W), w (F, C, kh, kw) -> (dx (N, C, H, W) or None, dw (F, C, kh, kw))."""
    (n, c, h, wd), (ph, pw), (ho, wo) = x.shape, padding, gy.shape[2:]
    wp = wd + 2 * pw
    length = (ho - 1) * wp + wo
    gyw = np.zeros((n, gy.shape[1], ho, wp), gy.dtype)   # dY widened: zeros in the Wp - Wo extra columns
    gyw[:, :, :, :wo] = gy
    gyw = gyw.reshape(n, gy.shape[1], -1)
    xf, w = pad_flat(x, padding), np.ascontiguousarray(w)
    work = gy.size * c * w.shape[2] * w.shape[3]
    dw_out = np.empty(w.shape, gy.dtype)
    _direct_weight_grad(work, gyw, xf, dw_out, wp, *dilation, length)
    if not need_dx:
        return None, dw_out
    dxf = np.zeros(xf.shape, gy.dtype)
    _direct_data_grad(work, gyw, w, dxf, wp, *dilation, length)
    dx = dxf.reshape(n, c, h + 2 * ph, wp)
    return (dx if ph == 0 and pw == 0 else np.ascontiguousarray(dx[:, :, ph:ph + h, pw:pw + wd])), dw_out
