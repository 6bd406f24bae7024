"""Numba Winograd F(2x2, 3x3) convolution, cache-blocked (the math: ``kernels/reference.py``).

The two transforms are memory-bound: the transformed input V is 4x the input
(16 values per 4 input pixels), so writing all of it out and reading it back
for the matrix multiplies costs more than the multiplies save. Instead the
tiles go in chunks of a few rows of tiles: transform a chunk into a small V
(16, C, chunk), run the 16 matrix multiplies into a small M (16, F, chunk),
inverse-transform M into the output, and go on, while V and M are still in
cache. Both transforms work on whole rows of tiles, so their inner loops run
over contiguous (or stride-2) rows and vectorise. The chunks are shared out
to one Python thread per core, each running serial kernels and a
single-threaded matrix multiply (``threads.py`` says why).

The weight gradient runs the same chunks backwards: V of x again, dM = A dY A^T of
the output gradient's 2x2 tiles, and 16 products dM[k] @ V[k]^T summed over the
chunks into dU (16, F, C), then dW = G^T dU G.
"""
import numpy as np
from numba import prange

from ... import workspace
from .jit import kernel
from .threads import threads as _threads

CHUNK_BYTES = 1 << 22   # bytes of V (and of M) per chunk: within the L3 cache, a few chunks per convolution
# Values of V from which the chunks go to one thread per core: a convolution of that size takes milliseconds,
# so the threads' start (tens of microseconds, a pool already running) pays far sooner than a Numba loop's does.
THREADS_FROM = 1 << 16


@kernel
def _input_tiles(x, v, row0, th, tw, ph, pw):
    """V[:, :, tiles of tile-rows row0 ...] = B^T d B for every 4x4 tile d of every channel."""
    n, c, h, w = x.shape
    wp = 2 * tw + 2
    rows_here = v.shape[2] // tw
    cols = min(w, wp - pw)
    for ci in prange(c):
        d = np.zeros((4, wp), x.dtype)      # the 4 (zero-padded) input rows under one row of tiles
        t = np.empty((4, wp), x.dtype)      # B^T d: combinations of those rows
        b, ty = row0 // th, row0 % th       # image and tile row, stepped below (no division per row)
        for r in range(rows_here):
            for a in range(4):              # element loops, not slices: rows are short (4-34 pixels), and
                iy = 2 * ty - ph + a        # a slice's set-up cost more than the copy on small maps
                if 0 <= iy < h:
                    src = x[b, ci, iy]
                    for j in range(cols):
                        d[a, pw + j] = src[j]
                else:
                    for j in range(wp):
                        d[a, j] = 0
            for k in range(wp):
                t[0, k] = d[0, k] - d[2, k]
                t[1, k] = d[1, k] + d[2, k]
                t[2, k] = d[2, k] - d[1, k]
                t[3, k] = d[1, k] - d[3, k]
            base = r * tw
            for i in range(4):   # (B^T d) B: the same combinations along the row, 2 pixels per tile
                t_row, out = t[i], v[4 * i:4 * i + 4, ci]
                for tx in range(tw):
                    k, p = np.uintp(2 * tx), np.uintp(base + tx)
                    out[0, p] = t_row[k] - t_row[k + 2]
                    out[1, p] = t_row[k + 1] + t_row[k + 2]
                    out[2, p] = t_row[k + 2] - t_row[k + 1]
                    out[3, p] = t_row[k + 1] - t_row[k + 3]
            ty += 1
            if ty == th:
                b, ty = b + 1, 0


@kernel
def _output_tiles(m, y, bias, has_bias, row0, th, tw):
    """y[tiles of tile-rows row0 ...] = A^T M A for every 2x2 output tile, plus the bias."""
    n, f, ho, wo = y.shape
    rows_here = m.shape[2] // tw
    for fi in prange(f):
        s = np.empty((2, 4, tw), m.dtype)   # A^T m for one row of tiles
        out = np.empty((2, 2 * tw), m.dtype)
        bv = bias[fi] if has_bias else 0.0
        b, ty = row0 // th, row0 % th
        for r in range(rows_here):
            base = r * tw
            for k in range(4):
                m0, m1, m2, m3 = m[k, fi], m[4 + k, fi], m[8 + k, fi], m[12 + k, fi]
                for tx in range(tw):
                    p = np.uintp(base + tx)
                    s[0, k, tx] = m0[p] + m1[p] + m2[p]
                    s[1, k, tx] = m1[p] - m2[p] - m3[p]
            for i in range(2):
                for tx in range(tw):
                    out[i, 2 * tx] = s[i, 0, tx] + s[i, 1, tx] + s[i, 2, tx] + bv
                    out[i, 2 * tx + 1] = s[i, 1, tx] - s[i, 2, tx] - s[i, 3, tx] + bv
                if 2 * ty + i < ho:
                    dst = y[b, fi, 2 * ty + i]
                    for j in range(wo):
                        dst[j] = out[i, j]
            ty += 1
            if ty == th:
                b, ty = b + 1, 0


@kernel
def _weights(w, u):
    f, c = w.shape[0], w.shape[1]
    for fi in prange(f):
        t = np.empty((4, 3), u.dtype)         # G g: rows g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2
        for ci in range(c):
            g = w[fi, ci]
            for j in range(3):
                t[0, j], t[3, j] = g[0, j], g[2, j]
                t[1, j] = 0.5 * (g[0, j] + g[1, j] + g[2, j])
                t[2, j] = 0.5 * (g[0, j] - g[1, j] + g[2, j])
            for i in range(4):                # (G g) G^T: the same combinations of the columns
                u[4 * i, fi, ci], u[4 * i + 3, fi, ci] = t[i, 0], t[i, 2]
                u[4 * i + 1, fi, ci] = 0.5 * (t[i, 0] + t[i, 1] + t[i, 2])
                u[4 * i + 2, fi, ci] = 0.5 * (t[i, 0] - t[i, 1] + t[i, 2])


@kernel
def _output_grad_tiles(gy, dm, row0, th, tw):
    """dM[:, :, tiles of tile-rows row0 ...] = A dY A^T for every 2x2 tile dY of gy (_output_tiles's transpose)."""
    n, f, ho, wo = gy.shape
    rows_here = dm.shape[2] // tw
    for fi in prange(f):
        g = np.zeros((2, 2 * tw), gy.dtype)   # the 2 rows of dY over one row of tiles; zero past the edge
        s = np.empty((4, 2 * tw), gy.dtype)   # A dY: rows g0, g0 + g1, g0 - g1, -g1
        b, ty = row0 // th, row0 % th
        for r in range(rows_here):
            for a in range(2):
                if 2 * ty + a < ho:
                    src = gy[b, fi, 2 * ty + a]
                    for j in range(wo):
                        g[a, j] = src[j]
                else:
                    for j in range(2 * tw):
                        g[a, j] = 0
            for k in range(2 * tw):
                s[0, k], s[1, k] = g[0, k], g[0, k] + g[1, k]
                s[2, k], s[3, k] = g[0, k] - g[1, k], -g[1, k]
            base = r * tw
            for i in range(4):   # (A dY) A^T: the same combinations of each tile's 2 columns
                s_row, out = s[i], dm[4 * i:4 * i + 4, fi]
                for tx in range(tw):
                    k, p = np.uintp(2 * tx), np.uintp(base + tx)
                    out[0, p] = s_row[k]
                    out[1, p] = s_row[k] + s_row[k + 1]
                    out[2, p] = s_row[k] - s_row[k + 1]
                    out[3, p] = -s_row[k + 1]
            ty += 1
            if ty == th:
                b, ty = b + 1, 0


@kernel
def _weights_backward(du, gw):
    """gw (F, C, 3, 3) = G^T dU G per filter: _weights's combinations, transposed."""
    f, c = gw.shape[0], gw.shape[1]
    for fi in prange(f):
        t = np.empty((3, 4), gw.dtype)   # G^T dU: rows dU0 + (dU1 + dU2) / 2, (dU1 - dU2) / 2, (dU1 + dU2) / 2 + dU3
        for ci in range(c):
            for j in range(4):
                d0, d1, d2, d3 = du[j, fi, ci], du[4 + j, fi, ci], du[8 + j, fi, ci], du[12 + j, fi, ci]
                t[0, j] = d0 + 0.5 * (d1 + d2)
                t[1, j] = 0.5 * (d1 - d2)
                t[2, j] = 0.5 * (d1 + d2) + d3
            for a in range(3):                 # (G^T dU) G: the same combinations of the columns
                gw[fi, ci, a, 0] = t[a, 0] + 0.5 * (t[a, 1] + t[a, 2])
                gw[fi, ci, a, 1] = 0.5 * (t[a, 1] - t[a, 2])
                gw[fi, ci, a, 2] = 0.5 * (t[a, 1] + t[a, 2]) + t[a, 3]


def winograd_weights(w):
    """As ``reference.winograd_weights``: w (F, C, 3, 3) -> U (16, F, C) = G w G^T per filter.

    U is borrowed from the workspace (valid until the next call): at 512 channels it is 16 MB, and a
    fresh array's page faults measured a third of the convolution it is made for."""
    u = workspace.borrow("winograd_u", (16,) + w.shape[:2], w.dtype, np)
    _weights(w.size, np.ascontiguousarray(w), u)
    return u


def deal_chunks(rows, tw, wide, itemsize):
    """How ``rows`` rows of ``tw`` tiles are shared out: (per_chunk, each worker thread's chunk starts).

    Chunks of ``per_chunk`` rows, dealt round-robin to one thread per core (to one thread below THREADS_FROM
    values); ``wide``: values per tile of the chunk's largest array (16 channels' worth), which sets the chunk
    size. ``functional/conv_scratch.py`` reads the same answer for the plan's scratch list.
    """
    workers = _threads.workers if wide * rows * tw >= THREADS_FROM else 1
    per_chunk = max(1, min(-(-rows // workers), CHUNK_BYTES // (wide * tw * itemsize)))
    starts = list(range(0, rows, per_chunk))
    workers = min(workers, len(starts))
    return per_chunk, [starts[i::workers] for i in range(workers)]


def _share_chunks(rows, tw, wide, itemsize, job):
    """Run ``job(starts, per_chunk, name)`` on each worker thread's chunks (``deal_chunks``), serially within a
    thread (``name`` keeps its workspace buffers apart) with single-threaded BLAS; the jobs' results come back."""
    per_chunk, dealt = deal_chunks(rows, tw, wide, itemsize)
    if len(dealt) == 1:
        return [job(dealt[0], per_chunk, "")]
    return _threads.run(lambda i: job(dealt[i], per_chunk, str(i)), range(len(dealt)))


def _chunk_buffers(name, c, f, tiles, dtype):
    """The chunk's V (16, C, tiles) and M (or dM) (16, F, tiles), reused from call to call."""
    return (workspace.borrow(name + "_v", (16, c, tiles), dtype, np),
            workspace.borrow(name + "_m", (16, f, tiles), dtype, np))


def winograd_conv(x, u, padding, out_hw, bias=None):
    """As ``reference.winograd_conv``: x (N, C, H, W), U (16, F, C) -> y (N, F, Ho, Wo), 3x3 stride 1."""
    x = np.ascontiguousarray(x)
    (n, c, _, _), f, (ho, wo) = x.shape, u.shape[1], out_hw
    th, tw = -(-ho // 2), -(-wo // 2)
    y = np.empty((n, f, ho, wo), x.dtype)
    b = np.zeros(1, x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)

    def job(starts, per_chunk, name):   # transform, multiply and inverse-transform each chunk in turn
        for row0 in starts:
            tiles = (min(n * th, row0 + per_chunk) - row0) * tw
            v, m = _chunk_buffers("winograd" + name, c, f, tiles, x.dtype)
            _input_tiles.serial(x, v, row0, th, tw, *padding)
            np.matmul(u, v, out=m)
            _output_tiles.serial(m, y, b, bias is not None, row0, th, tw)

    _share_chunks(n * th, tw, 16 * max(c, f), x.itemsize, job)
    return y


def winograd_weight_grad(x, gy, padding):
    """As ``reference.winograd_weight_grad``: dW (F, C, 3, 3) = G^T [sum over tiles of dM @ V^T] G."""
    x, gy = np.ascontiguousarray(x), np.ascontiguousarray(gy, dtype=x.dtype)
    (n, c, _, _), (f, ho, wo) = x.shape, gy.shape[1:]
    th, tw = -(-ho // 2), -(-wo // 2)

    def job(starts, per_chunk, name):   # this thread's dU, summed over its chunks (workspace: 16 MB at 512 channels)
        name = "winograd_dw" + name
        du = workspace.borrow(name + "_du", (16, f, c), x.dtype, np)
        for i, row0 in enumerate(starts):
            tiles = (min(n * th, row0 + per_chunk) - row0) * tw
            v, dm = _chunk_buffers(name, c, f, tiles, x.dtype)
            _input_tiles.serial(x, v, row0, th, tw, *padding)
            _output_grad_tiles.serial(gy, dm, row0, th, tw)
            if i == 0:
                np.matmul(dm, v.transpose(0, 2, 1), out=du)
            else:
                du += np.matmul(dm, v.transpose(0, 2, 1), out=workspace.borrow(name + "_product", du.shape,
                                                                               x.dtype, np))
        return du

    du, *others = _share_chunks(n * th, tw, 16 * max(c, f), x.itemsize, job)
    for other in others:
        du += other
    gw = np.empty((f, c, 3, 3), x.dtype)
    _weights_backward(gw.size, du, gw)
    return gw


__all__ = ["winograd_conv", "winograd_weight_grad", "winograd_weights"]
