"""Numba kernels for the depthwise convolution (groups == channels): forward, and backward (dx and dw) in one pass.

Each input plane is first copied into a zero-padded buffer, split by stride into
*phases*: phase (a, b) holds the padded pixels at rows a, a+sh, a+2sh, ... and
columns b, b+sw, .... Every tap (i, j) of the filter then reads one phase at a
fixed offset, with unit stride, whatever the stride and dilation. Laying the
output on the phase grid (Wq columns a row, the last Wq - Wo of them unused)
turns a plane into one flat vector; the same channel of a *stack* of images,
one grid after another, is one longer vector (MobileNet's 4x4 and 2x2 planes
would give loops too short to vectorise). At stride 1 there is one phase, and
neighbours share their padding: the zero columns right of a row are those left
of the next, the zero rows below an image those above the next (grid_layout),
so fewer dropped positions are computed. The filter is then a single loop

    acc[p] = sum over taps (i, j) of w[i, j] * phases[tap_offset[i, j] + p]       p over the whole stack

with no bounds checks, which the compiler vectorises (a 3x3 filter in one pass:
nine loads and one store an output); positions between the images' outputs are
computed and dropped. A stack's planes lie a whole image apart in x, so a thread
takes the channels of one stack one after another: each reads the bytes next to
the last one's, in the same pages. Buffers are allocated once per thread's share.

The backward: dw is the dot product of gy (laid on the same grid) with each tap's
window, summed over the batch (the nine of a 3x3 filter in one pass over gy). dx
at stride 1 is the forward's loop again with the taps reflected, gathering
w * gy from gy's grid; at other strides it scatters w * gy into a padded phase
buffer. Either way dx is then copied out of the padded buffer.
"""
import numba
import numpy as np
from numba import njit, prange

from .conv import _valid_range
from .jit import kernel

# Padded pixels of one channel's images handled together: long loops that stay in L1. 2048 rather than 8192:
# fewer pages read at once (576 channels at 8x8, batch 64, one thread: forward 1.5-1.6 against 1.9-2.6 x PyTorch).
STACK_ELEMENTS = 2048


def phase_grid(out_hw, kernel_hw, stride, dilation):
    """(Hq, Wq): the size of one phase of the padded plane, enough for every window of every output."""
    return tuple(-(-((o - 1) * s + (k - 1) * d + 1) // s) for o, k, s, d in zip(out_hw, kernel_hw, stride, dilation))


def grid_layout(x_hw, out_hw, kernel_hw, stride, padding, dilation):
    """(Hq, Wq, tail): each image's block of the buffer (Hq rows of Wq) and how far the last window reaches past
    the last block. Stride 1 shares the padding between neighbours: the zero columns right of one row serve
    as those left of the next, the zero rows below one image as those above the next (MobileNet's 4x4 planes,
    pad 1: blocks of 5x5 instead of 6x6, 2x2: 3x3 instead of 4x4). Any other stride: phase_grid, no tail."""
    hq, wq = phase_grid(out_hw, kernel_hw, stride, dilation)
    if tuple(stride) != (1, 1):
        return hq, wq, 0
    (h, wd), (ho, wo) = x_hw, out_hw
    # zero rows (columns) the last window reaches past the image's last row (column)
    after = [max(0, o - 1 + (k - 1) * d - p - (i - 1))
             for o, k, d, p, i in zip(out_hw, kernel_hw, dilation, padding, x_hw)]
    rows, cols = max(ho, h + max(padding[0], after[0])), max(wo, wd + max(padding[1], after[1]))
    return rows, cols, max(0, (hq - 1) * cols + wq - rows * cols)


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
def _grid_to_plane(grid, base, plane, ho, wo, wq, bias):
    """Outputs on the phase grid (rows of Wq from ``base``) -> plane (Ho*Wo,), plus the filter's bias (a scalar)."""
    for yy in range(ho):
        for xx in range(wo):
            plane[np.uintp(yy * wo + xx)] = grid[np.uintp(base + yy * wq + xx)] + bias


@njit(cache=True)
def _plane_to_grid(plane, grid, base, ho, wo, wq):
    for yy in range(ho):
        for xx in range(wo):
            grid[np.uintp(base + yy * wq + xx)] = plane[np.uintp(yy * wo + xx)]


# Reassociation lets the compiler split a sum over several vector accumulators (it may not
# otherwise: float addition is not associative). Only the weight gradient's dot products get it,
# and each call covers one stack of images, whose totals are then added in float64.
@njit(cache=True, fastmath={"reassoc", "contract"})
def _tap_dots(totals, base, grid, g0, src, taps, span):
    """totals[base + t] += sum over p < span of grid[g0 + p] * src[taps[t] + p], for every tap t.

    Nine taps (3x3) in one pass over grid, each with its own accumulator; other filters a pass a tap."""
    if taps.size == 9:
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = grid[0] * 0
        o0, o1, o2, o3, o4, o5, o6, o7, o8 = taps[0], taps[1], taps[2], taps[3], taps[4], taps[5], taps[6], \
            taps[7], taps[8]
        for p in range(span):
            q = np.uintp(p)
            g = grid[q + g0]
            s0 += g * src[q + o0]
            s1 += g * src[q + o1]
            s2 += g * src[q + o2]
            s3 += g * src[q + o3]
            s4 += g * src[q + o4]
            s5 += g * src[q + o5]
            s6 += g * src[q + o6]
            s7 += g * src[q + o7]
            s8 += g * src[q + o8]
        for t, total in enumerate((s0, s1, s2, s3, s4, s5, s6, s7, s8)):
            totals[base + t] += total
        return
    for t in range(taps.size):
        total, off = grid[0] * 0, taps[t]
        for p in range(span):
            q = np.uintp(p)
            total += grid[q + g0] * src[q + off]
        totals[base + t] += total


@njit(cache=True)
def _filter_span(acc, src, wt, taps, span):
    """acc[p] = sum over taps t, in order, of wt[t] * src[taps[t] + p], for p < span (taps unsigned).

    A 3x3 filter (MobileNet's) in one pass: nine loads and one store an output, instead of a load, a load
    and a store per tap. Any other filter a tap a pass, adding into acc, which stays in cache."""
    if taps.size == 9:
        w0, w1, w2, w3, w4, w5, w6, w7, w8 = wt[0], wt[1], wt[2], wt[3], wt[4], wt[5], wt[6], wt[7], wt[8]
        o0, o1, o2, o3, o4, o5, o6, o7, o8 = taps[0], taps[1], taps[2], taps[3], taps[4], taps[5], taps[6], \
            taps[7], taps[8]
        for p in range(span):   # unsigned indices: Numba makes an unsigned plus a signed integer a float
            q = np.uintp(p)
            acc[q] = (w0 * src[q + o0] + w1 * src[q + o1] + w2 * src[q + o2] + w3 * src[q + o3] + w4 * src[q + o4]
                      + w5 * src[q + o5] + w6 * src[q + o6] + w7 * src[q + o7] + w8 * src[q + o8])
        return
    wv, off = wt[0], taps[0]
    for p in range(span):
        acc[np.uintp(p)] = wv * src[np.uintp(p) + off]
    for t in range(1, taps.size):
        wv, off = wt[t], taps[t]
        for p in range(span):
            acc[np.uintp(p)] += wv * src[np.uintp(p) + off]


@kernel
def _depthwise_forward(x, w, bias, y, taps, chunks, stack, h, wd, ho, wo, sh, sw, ph, pw, hq, wq, tail):
    n, c = x.shape[:2]
    m, size = w.shape[0] // c, hq * wq
    units = c * ((n + stack - 1) // stack)
    for chunk in prange(chunks):   # buffers allocated once per chunk; the padding stays zero between units
        phases, acc = np.zeros(sh * sw * stack * size + tail, x.dtype), np.empty(stack * size, x.dtype)
        # One channel of a stack of images per unit, the channels of a stack one after another, and each
        # chunk's units consecutive: the next unit reads the bytes after this one's, in the same pages
        # (256 channels at 8x8: 1.41-1.45 x PyTorch, against 1.53 with a channel's stacks one after another
        # and 1.82 with every 8th unit a chunk).
        for unit in range(chunk * units // chunks, (chunk + 1) * units // chunks):
            ci, b0 = unit % c, (unit // c) * stack
            count = min(stack, n - b0)
            span = (count - 1) * size + (ho - 1) * wq + wo
            _fill_phases(x[b0:b0 + count, ci], phases, stack, h, wd, sh, sw, ph, pw, hq, wq)
            for o in range(ci * m, ci * m + m):
                _filter_span(acc, phases, w[o], taps, span)
                for k in range(count):
                    _grid_to_plane(acc, k * size, y[b0 + k, o], ho, wo, wq, bias[o])


def _chunks(units):
    """How many pieces to split ``units`` iterations into: a few per thread, each allocating its buffers once."""
    return max(1, min(units, 8 * numba.get_num_threads()))


def depthwise_forward(x, w, stride, padding, dilation, out_hw, bias=None):
    """x (N, C, H, W), w (C*m, 1, kh, kw) -> (N, C*m, Ho, Wo), plus bias (C*m,) when given: added as each output
    leaves the grid, not in a pass of its own over y (MobileNet's folded batch norms give every one a bias)."""
    (n, c, h, wd), (ho, wo), (kh, kw) = x.shape, out_hw, w.shape[2:]
    y = np.empty((n, w.shape[0], ho, wo), dtype=x.dtype)
    hq, wq, tail = grid_layout((h, wd), out_hw, (kh, kw), stride, padding, dilation)
    stack = stack_size(n, stride, hq, wq)
    taps = _tap_offsets(kh, kw, *stride, *dilation, stack * hq * wq, wq).astype(np.uintp)
    _depthwise_forward(y.size * kh * kw, np.ascontiguousarray(x).reshape(n, c, h * wd),
                       np.ascontiguousarray(w).reshape(-1, kh * kw),
                       np.zeros(w.shape[0], x.dtype) if bias is None else bias.astype(x.dtype, copy=False),
                       y.reshape(n, -1, ho * wo), taps,
                       _chunks(c * -(-n // stack)), stack, h, wd, ho, wo, *stride, *padding, hq, wq, tail)
    return y


@njit(cache=True)
def _scatter_taps(d_phases, grid, g0, wt, taps, span):
    """d_phases[taps[t] + p] += wt[t] * grid[g0 + p] for every tap t and p < span: dx on the phases, any stride."""
    for t in range(taps.size):
        wv, off = wt[t], taps[t]
        for p in range(span):
            q = np.uintp(p)
            d_phases[q + off] += wv * grid[q + g0]


@njit(cache=True)
def _input_grads(d_phases, tmp, grid, margin, wt, back_taps, taps, first, span, extent, stride_one):
    """dx of one filter on the phase buffer, added to d_phases (or written there when ``first``).

    Stride 1 gathers: dx at padded pixel q is sum_t wt[t] * gy[q - taps[t]], _filter_span's loop read from
    gy's grid (``back_taps[t]`` = margin - taps[t], the zeros before the grid standing in for the gy no output
    gives), one store a pixel instead of a read and a write of d_phases per tap. Other strides scatter."""
    if stride_one:
        if first:
            _filter_span(d_phases, grid, wt, back_taps, extent)
        else:
            _filter_span(tmp, grid, wt, back_taps, extent)
            for p in range(extent):
                d_phases[np.uintp(p)] += tmp[np.uintp(p)]
        return
    if first:
        d_phases[:] = 0
    _scatter_taps(d_phases, grid, margin, wt, taps, span)


@kernel
def _depthwise_backward(gy, x, w, dx, dwt, taps, back_taps, margin, chunks, need_dx, stack, h, wd, ho, wo, sh, sw,
                        ph, pw, hq, wq, tail):
    n, c = x.shape[:2]
    cm, taps_n = w.shape
    m, size = cm // c, hq * wq
    stride_one = sh == 1 and sw == 1
    for chunk in prange(chunks):   # a range of channels: their dx planes and their m filters' dw are its own
        c0, c1 = chunk * c // chunks, (chunk + 1) * c // chunks
        phases, d_phases = np.zeros(sh * sw * stack * size + tail, x.dtype), np.empty(sh * sw * stack * size, x.dtype)
        tmp = np.empty(stack * size if m > 1 else 1, x.dtype)
        # gy on the phase grid after ``margin`` zeros; the unused positions stay zero, so their products add
        # nothing to dw (unless the input pixel they meet is Inf or NaN: then dw is NaN at more taps than it
        # must be) and gather nothing into dx
        grid = np.zeros(margin + stack * size, x.dtype)
        totals = np.zeros((c1 - c0) * m * taps_n, np.float64)   # dw of these channels' filters
        for b0 in range(0, n, stack):   # stack-major, as the forward: consecutive reads within the same pages
            count = min(stack, n - b0)
            span = (count - 1) * size + (ho - 1) * wq + wo
            for ci in range(c0, c1):
                _fill_phases(x[b0:b0 + count, ci], phases, stack, h, wd, sh, sw, ph, pw, hq, wq)
                for k in range(m):
                    o = ci * m + k
                    for i in range(count):
                        _plane_to_grid(gy[b0 + i, o], grid, margin + i * size, ho, wo, wq)
                    _tap_dots(totals, ((ci - c0) * m + k) * taps_n, grid, np.uintp(margin), phases, taps, span)
                    if need_dx:
                        _input_grads(d_phases, tmp, grid, np.uintp(margin), w[o], back_taps, taps, k == 0, span,
                                     count * size, stride_one)
                if need_dx:
                    _planes_from_phases(d_phases, dx[b0:b0 + count, ci], stack, h, wd, sh, sw, ph, pw, hq, wq)
        for j in range(totals.size):
            dwt[c0 * m * taps_n + j] = totals[j]


def depthwise_backward(gy, x, w, stride, padding, dilation, need_dx=True):
    """gy (N, C*m, Ho, Wo) -> (dx (N, C, H, W) or None, dw (C*m, 1, kh, kw))."""
    gy, x, w = np.ascontiguousarray(gy), np.ascontiguousarray(x), np.ascontiguousarray(w)
    (n, c, h, wd), (ho, wo), (kh, kw) = x.shape, gy.shape[2:], w.shape[2:]
    hq, wq, tail = grid_layout((h, wd), (ho, wo), (kh, kw), stride, padding, dilation)
    stack = stack_size(n, stride, hq, wq)
    taps = _tap_offsets(kh, kw, *stride, *dilation, stack * hq * wq, wq)
    margin = int(taps.max()) if stride == (1, 1) else 0   # the gather's reach back from a pixel
    back_taps = margin - taps if stride == (1, 1) else taps   # (only the stride-1 gather reads them)
    dw = np.empty_like(w)
    dx = np.empty_like(x) if need_dx else np.empty((1, 1, 1, 1), x.dtype)
    _depthwise_backward(gy.size * kh * kw, gy.reshape(n, -1, ho * wo), x.reshape(n, c, h * wd),
                        w.reshape(-1, kh * kw), dx.reshape(dx.shape[0], dx.shape[1], -1), dw.reshape(-1),
                        taps.astype(np.uintp), back_taps.astype(np.uintp), margin, _chunks(c), need_dx,
                        stack, h, wd, ho, wo, *stride, *padding, hq, wq, tail)
    return (dx if need_dx else None), dw
