"""Numba kernels for the depthwise convolution (groups == channels): forward, and backward (dx and dw) in one pass.

Each input plane is first copied into a zero-padded buffer, split by stride into
*phases*: phase (a, b) holds the padded pixels at rows a, a+sh, a+2sh, ... and
columns b, b+sw, .... Every tap (i, j) of the filter then reads one phase at a
fixed offset, with unit stride, whatever the stride and dilation. Laying the
output on the phase grid (Wq columns a row, the last Wq - Wo of them unused)
turns a plane into one flat vector; the same channel of a *stack* of images,
one grid after another, is one longer vector (MobileNet's 4x4 and 2x2 planes
would give loops too short to vectorise). Each tap is then a single loop

    acc[p] += w[i, j] * phases[tap_offset[i, j] + p]       p over the whole stack

with no bounds checks, which the compiler vectorises; positions between the
images' outputs are computed and dropped. The backward runs the same loops the
other way round: dx scatters w * gy into a padded buffer (then copied out of
it), dw is the dot product of gy with each tap's window, summed over the batch.
"""
import numpy as np
from numba import njit, prange

from .conv import _valid_range
from .jit import kernel

STACK_ELEMENTS = 8192   # padded pixels of one channel's images handled together: enough for long loops, fits L1/L2


def phase_grid(out_hw, kernel_hw, stride, dilation):
    """(Hq, Wq): the size of one phase of the padded plane, enough for every window of every output."""
    return tuple(-(-((o - 1) * s + (k - 1) * d + 1) // s) for o, k, s, d in zip(out_hw, kernel_hw, stride, dilation))


def stack_size(n, stride, hq, wq):
    """How many images of one channel to lay one after another in a buffer (see the module docstring)."""
    return max(1, min(n, STACK_ELEMENTS // (stride[0] * stride[1] * hq * wq)))


@njit(cache=True)
def _tap_offsets(kh, kw, sh, sw, dh, dw, phase_size, wq):
    """For tap (i, j): where, in the phase buffer, the window of output 0 starts (its phase + row + column)."""
    offsets = np.empty(kh * kw, np.int64)
    for i in range(kh):
        for j in range(kw):
            phase = ((i * dh) % sh) * sw + (j * dw) % sw
            offsets[i * kw + j] = phase * phase_size + ((i * dh) // sh) * wq + (j * dw) // sw
    return offsets


@njit(cache=True)
def _fill_phases(planes, phases, stack, h, wd, sh, sw, ph, pw, hq, wq):
    """planes (S, H*W) -> phases (sh*sw, stack, Hq, Wq) flat: each plane padded and split by stride.

    Only the image's own pixels are written: the padding stays as the zeros the buffer started with."""
    for b in range(sw):
        lo, hi = _valid_range(wq, b - pw, sw, wd)   # phase columns inside the image
        for a in range(sh):
            u_lo, u_hi = _valid_range(hq, a - ph, sh, h)
            for k in range(planes.shape[0]):
                src, base = planes[k], ((a * sw + b) * stack + k) * hq * wq
                for u in range(u_lo, u_hi):
                    row, start = base + u * wq, (u * sh + a - ph) * wd + b - pw
                    if sw == 1:   # a contiguous copy, which the compiler vectorises
                        for v in range(lo, hi):
                            phases[np.uintp(row + v)] = src[np.uintp(v + start)]
                    else:
                        for v in range(lo, hi):
                            phases[np.uintp(row + v)] = src[np.uintp(v * sw + start)]


@njit(cache=True)
def _planes_from_phases(phases, planes, stack, h, wd, sh, sw, ph, pw, hq, wq):
    """The inverse of _fill_phases: each image's pixels back from the padded phases into planes (S, H*W)."""
    rows_in, cols_in = min(h, max(0, hq * sh - ph)), min(wd, max(0, wq * sw - pw))
    for k in range(planes.shape[0]):   # pixels past the last window (a stride that does not fit) get none
        for iy in range(h):
            for ix in range(cols_in if iy < rows_in else 0, wd):
                planes[k, iy * wd + ix] = 0
    for b in range(sw):
        lo, hi = _valid_range(wq, b - pw, sw, wd)   # phase columns inside the image
        for a in range(sh):
            u_lo, u_hi = _valid_range(hq, a - ph, sh, h)
            for k in range(planes.shape[0]):
                dst, base = planes[k], ((a * sw + b) * stack + k) * hq * wq
                for u in range(u_lo, u_hi):
                    row, start = base + u * wq, (u * sh + a - ph) * wd + b - pw
                    if sw == 1:
                        for v in range(lo, hi):
                            dst[np.uintp(v + start)] = phases[np.uintp(row + v)]
                    else:
                        for v in range(lo, hi):
                            dst[np.uintp(v * sw + start)] = phases[np.uintp(row + v)]


@njit(cache=True)
def _grid_to_plane(grid, base, plane, ho, wo, wq):
    """Outputs on the phase grid (rows of Wq from ``base``) -> plane (Ho*Wo,)."""
    for yy in range(ho):
        for xx in range(wo):
            plane[np.uintp(yy * wo + xx)] = grid[np.uintp(base + yy * wq + xx)]


@njit(cache=True)
def _plane_to_grid(plane, grid, base, ho, wo, wq):
    for yy in range(ho):
        for xx in range(wo):
            grid[np.uintp(base + yy * wq + xx)] = plane[np.uintp(yy * wo + xx)]


# Reassociation lets the compiler split a sum over several vector accumulators (it may not
# otherwise: float addition is not associative). Only this one dot product gets it, and each
# call covers one stack of images, whose totals are then added in float64.
@njit(cache=True, fastmath={"reassoc", "contract"})
def _dot(a, b, b_offset, count):
    total = a[0] * 0
    for p in range(count):
        total += a[np.uintp(p)] * b[np.uintp(p + b_offset)]
    return total


@kernel
def _depthwise_forward(x, w, y, stack, h, wd, ho, wo, sh, sw, ph, pw, dh, dw, hq, wq):
    n, c = x.shape[:2]
    cm, _, kh, kw = w.shape
    m, size = cm // c, hq * wq
    taps = _tap_offsets(kh, kw, sh, sw, dh, dw, stack * size, wq)
    stacks = (n + stack - 1) // stack
    for unit in prange(c * stacks):   # one channel of a stack of images per iteration
        ci, b0 = unit // stacks, (unit % stacks) * stack
        count = min(stack, n - b0)
        span = (count - 1) * size + (ho - 1) * wq + wo
        phases, acc = np.zeros(sh * sw * stack * size, x.dtype), np.empty(span, x.dtype)
        _fill_phases(x[b0:b0 + count, ci], phases, stack, h, wd, sh, sw, ph, pw, hq, wq)
        for o in range(ci * m, ci * m + m):
            filt = w[o, 0]
            wv, off = filt[0, 0], taps[0]
            for p in range(span):
                acc[np.uintp(p)] = wv * phases[np.uintp(p + off)]
            for t in range(1, kh * kw):   # every tap adds into the accumulator, which stays in cache
                wv, off = filt[t // kw, t % kw], taps[t]
                for p in range(span):
                    acc[np.uintp(p)] += wv * phases[np.uintp(p + off)]
            for k in range(count):
                _grid_to_plane(acc, k * size, y[b0 + k, o], ho, wo, wq)


def depthwise_forward(x, w, stride, padding, dilation, out_hw):
    """x (N, C, H, W), w (C*m, 1, kh, kw) -> (N, C*m, Ho, Wo)."""
    y = np.empty((x.shape[0], w.shape[0]) + tuple(out_hw), dtype=x.dtype)
    hq, wq = phase_grid(out_hw, w.shape[2:], stride, dilation)
    (n, c, h, wd), (ho, wo) = x.shape, out_hw
    _depthwise_forward(y.size * w.shape[2] * w.shape[3], np.ascontiguousarray(x).reshape(n, c, h * wd),
                       np.ascontiguousarray(w), y.reshape(n, -1, ho * wo), stack_size(n, stride, hq, wq),
                       h, wd, ho, wo, *stride, *padding, *dilation, hq, wq)
    return y


@kernel
def _depthwise_backward(gy, x, w, dx, dwt, need_dx, stack, h, wd, ho, wo, sh, sw, ph, pw, dh, dw, hq, wq):
    n, c = x.shape[:2]
    cm, _, kh, kw = w.shape
    m, size, taps_n = cm // c, hq * wq, kh * kw
    taps = _tap_offsets(kh, kw, sh, sw, dh, dw, stack * size, wq)
    for ci in prange(c):   # one input channel per iteration: its dx planes and its m filters' dw are its own
        phases, d_phases = np.zeros(sh * sw * stack * size, x.dtype), np.empty(sh * sw * stack * size, x.dtype)
        # gy on the phase grid; the unused positions stay zero, so their products add nothing to dw
        # (unless the input pixel they meet is Inf or NaN: then dw is NaN at more taps than it must be)
        grid = np.zeros(stack * size, x.dtype)
        totals = np.zeros(m * taps_n, np.float64)   # dw of this channel's filters
        for b0 in range(0, n, stack):
            count = min(stack, n - b0)
            span = (count - 1) * size + (ho - 1) * wq + wo
            _fill_phases(x[b0:b0 + count, ci], phases, stack, h, wd, sh, sw, ph, pw, hq, wq)
            d_phases[:] = 0
            for k in range(m):
                o = ci * m + k
                for i in range(count):
                    _plane_to_grid(gy[b0 + i, o], grid, i * size, ho, wo, wq)
                filt = w[o, 0]
                for t in range(taps_n):
                    wv, off = filt[t // kw, t % kw], taps[t]
                    totals[k * taps_n + t] += _dot(grid, phases, off, span)
                    if need_dx:
                        for p in range(span):
                            d_phases[np.uintp(p + off)] += wv * grid[np.uintp(p)]
            if need_dx:
                _planes_from_phases(d_phases, dx[b0:b0 + count, ci], stack, h, wd, sh, sw, ph, pw, hq, wq)
        for k in range(m):
            for t in range(taps_n):
                dwt[ci * m + k, 0, t // kw, t % kw] = totals[k * taps_n + t]


def depthwise_backward(gy, x, w, stride, padding, dilation, need_dx=True):
    """gy (N, C*m, Ho, Wo) -> (dx (N, C, H, W) or None, dw (C*m, 1, kh, kw))."""
    gy, x, w = np.ascontiguousarray(gy), np.ascontiguousarray(x), np.ascontiguousarray(w)
    hq, wq = phase_grid(gy.shape[2:], w.shape[2:], stride, dilation)
    (n, c, h, wd), (ho, wo) = x.shape, gy.shape[2:]
    dw = np.empty_like(w)
    dx = np.empty_like(x) if need_dx else np.empty((1, 1, 1, 1), x.dtype)
    _depthwise_backward(gy.size * w.shape[2] * w.shape[3], gy.reshape(n, -1, ho * wo), x.reshape(n, c, h * wd), w,
                        dx.reshape(dx.shape[0], dx.shape[1], -1), dw, need_dx, stack_size(n, stride, hq, wq),
                        h, wd, ho, wo, *stride, *padding, *dilation, hq, wq)
    return (dx if need_dx else None), dw
