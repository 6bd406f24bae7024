"""Numba kernels for the direct convolution: stride 1, groups 1, few filters (functional/conv.conv_path).

No column matrix: each output plane is accumulated tap by tap straight from the input plane, four filters'
planes per pass over the input (forward) or four filters' dY planes per pass over dx (backward). The trick
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


# Filters in blocks of FILTER_BLOCK per pass over an input plane: each input pixel, once loaded, feeds the
# multiply-adds of four output planes instead of one (the loads, not the arithmetic, bound a pass). Batch 64,
# 2 threads, AVX2-width vectors: LeNet-5's second layer (6 -> 16, 5x5 at 14x14) 0.53 -> 0.33 ms, its first
# (3 -> 6 at 32x32, 6 filters run as 8) 0.50 -> 0.47 ms.
FILTER_BLOCK = 4


@kernel(fastmath=CONTRACT)
def _direct_forward(xf, w4, b, y, wp, dh, dw):
    """w4 (F4, 4, C, kh, kw): the filters in blocks of 4, zero filters filling the last; b (4*F4,). Up to 5 taps
    of a kernel row per pass over the four wide planes acc, weights as scalars. Written out: a helper function
    per pass ran 2x slower (it cannot know that its five arrays do not overlap)."""
    n, c, blocks, kh, kw = xf.shape[0], xf.shape[1], w4.shape[0], w4.shape[3], w4.shape[4]
    f, ho, wo = y.shape[1], y.shape[2], y.shape[3]
    length = (ho - 1) * wp + wo
    d1, d2, d3, d4 = np.uintp(dw), np.uintp(2 * dw), np.uintp(3 * dw), np.uintp(4 * dw)   # unsigned: an
    # unsigned index plus a signed int is a float in Numba's typing
    for task in prange(n * blocks):       # one (image, block of filters) per iteration
        bi, fb = task // blocks, task % blocks
        acc = np.empty((4, length), y.dtype)   # four wide output planes: a few kB each, in L1 through all taps
        for q in range(4):
            acc[q, :] = b[fb * 4 + q]
        a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
        for ci in range(c):
            x_plane = xf[bi, ci]
            for i in range(kh):
                wr, j = w4[fb, :, ci, i], 0
                while j < kw:
                    o = i * dh * wp + j * dw
                    if j + 4 < kw:
                        u0, u1, u2, u3, u4 = wr[0, j], wr[0, j + 1], wr[0, j + 2], wr[0, j + 3], wr[0, j + 4]
                        v0, v1, v2, v3, v4 = wr[1, j], wr[1, j + 1], wr[1, j + 2], wr[1, j + 3], wr[1, j + 4]
                        s0, s1, s2, s3, s4 = wr[2, j], wr[2, j + 1], wr[2, j + 2], wr[2, j + 3], wr[2, j + 4]
                        t0, t1, t2, t3, t4 = wr[3, j], wr[3, j + 1], wr[3, j + 2], wr[3, j + 3], wr[3, j + 4]
                        for k in range(length):   # unsigned indices: a loop the compiler vectorises
                            q = np.uintp(k + o)
                            x0, x1, x2 = x_plane[q], x_plane[q + d1], x_plane[q + d2]
                            x3, x4 = x_plane[q + d3], x_plane[q + d4]
                            a0[np.uintp(k)] += u0 * x0 + u1 * x1 + u2 * x2 + u3 * x3 + u4 * x4
                            a1[np.uintp(k)] += v0 * x0 + v1 * x1 + v2 * x2 + v3 * x3 + v4 * x4
                            a2[np.uintp(k)] += s0 * x0 + s1 * x1 + s2 * x2 + s3 * x3 + s4 * x4
                            a3[np.uintp(k)] += t0 * x0 + t1 * x1 + t2 * x2 + t3 * x3 + t4 * x4
                        j += 5
                    elif j + 2 < kw:
                        u0, u1, u2, v0, v1, v2 = wr[0, j], wr[0, j + 1], wr[0, j + 2], wr[1, j], wr[1, j + 1], \
                            wr[1, j + 2]
                        s0, s1, s2, t0, t1, t2 = wr[2, j], wr[2, j + 1], wr[2, j + 2], wr[3, j], wr[3, j + 1], \
                            wr[3, j + 2]
                        for k in range(length):
                            q = np.uintp(k + o)
                            x0, x1, x2 = x_plane[q], x_plane[q + d1], x_plane[q + d2]
                            a0[np.uintp(k)] += u0 * x0 + u1 * x1 + u2 * x2
                            a1[np.uintp(k)] += v0 * x0 + v1 * x1 + v2 * x2
                            a2[np.uintp(k)] += s0 * x0 + s1 * x1 + s2 * x2
                            a3[np.uintp(k)] += t0 * x0 + t1 * x1 + t2 * x2
                        j += 3
                    else:
                        u0, v0, s0, t0 = wr[0, j], wr[1, j], wr[2, j], wr[3, j]
                        for k in range(length):
                            x0 = x_plane[np.uintp(k + o)]
                            a0[np.uintp(k)] += u0 * x0
                            a1[np.uintp(k)] += v0 * x0
                            a2[np.uintp(k)] += s0 * x0
                            a3[np.uintp(k)] += t0 * x0
                        j += 1
        for q in range(min(4, f - fb * 4)):   # drop the Wp - Wo garbage columns of each row (and zero filters)
            for oy in range(ho):
                y[bi, fb * 4 + q, oy, :] = acc[q, oy * wp:oy * wp + wo]


def direct_conv(x, w, b, padding, dilation, out_hw):
    """x (N, C, H, W), w (F, C, kh, kw), b (F,) or None -> y (N, F, Ho, Wo), stride 1."""
    xf, (f, c, kh, kw) = pad_flat(x, padding), w.shape
    y = np.empty((x.shape[0], f) + tuple(out_hw), x.dtype)
    blocks = -(-f // FILTER_BLOCK)
    w4 = np.zeros((blocks * FILTER_BLOCK, c, kh, kw), x.dtype)   # weight-sized: the filters in blocks
    w4[:f] = w
    bias = np.zeros(blocks * FILTER_BLOCK, x.dtype)
    if b is not None:
        bias[:f] = b
    work = y.size * c * kh * kw
    _direct_forward(work, xf, w4.reshape(blocks, FILTER_BLOCK, c, kh, kw), bias, y, x.shape[3] + 2 * padding[1],
                    *dilation)
    return y


def pad_flat(x, padding):
    """x (N, C, H, W) -> (N, C, Hp*Wp), zero-padded by ``padding``: a view when there is no padding."""
    (n, c, h, wd), (ph, pw) = x.shape, padding
    if ph == 0 and pw == 0:
        return np.ascontiguousarray(x).reshape(n, c, h * wd)
    xf = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), x.dtype)
    xf[:, :, ph:ph + h, pw:pw + wd] = x
    return xf.reshape(n, c, -1)


@kernel(fastmath=CONTRACT)
def _direct_data_grad(gyw, w, dxf, wp, dh, dw, length):
    n, c, f = dxf.shape[0], dxf.shape[1], w.shape[0]
    kh, kw = w.shape[2], w.shape[3]
    # One tap but up to 4 filters per pass: one load and one store of dx per 4 multiply-adds instead of per one.
    # LeNet-5's second layer (16 filters), batch 64, 2 threads: 0.90 -> 0.46 ms; one thread 1.67 -> 0.76.
    for plane in prange(n * c):   # one (image, channel) plane of dx per iteration: no two write the same pixel
        bi, ci = plane // c, plane % c
        dx_plane = dxf[bi, ci]
        fi = 0
        while fi < f:
            if fi + 3 < f:
                g0, g1, g2, g3 = gyw[bi, fi], gyw[bi, fi + 1], gyw[bi, fi + 2], gyw[bi, fi + 3]
                for i in range(kh):
                    for j in range(kw):
                        w0, w1, w2, w3 = w[fi, ci, i, j], w[fi + 1, ci, i, j], w[fi + 2, ci, i, j], w[fi + 3, ci, i, j]
                        off = i * dh * wp + j * dw
                        for k in range(length):
                            u = np.uintp(k)
                            dx_plane[u + np.uintp(off)] += w0 * g0[u] + w1 * g1[u] + w2 * g2[u] + w3 * g3[u]
                fi += 4
            else:
                g_plane = gyw[bi, fi]
                for i in range(kh):
                    for j in range(kw):
                        wv, off = w[fi, ci, i, j], i * dh * wp + j * dw
                        for k in range(length):
                            dx_plane[np.uintp(k + off)] += wv * g_plane[np.uintp(k)]
                fi += 1


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
