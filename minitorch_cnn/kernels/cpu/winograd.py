"""Numba Winograd F(4x4, 3x3) convolution, cache-blocked (the math: ``kernels/reference.py``).

F(4x4, 3x3) multiplies 36 values per 4x4 output tile and channel pair, im2col 144 and F(2x2, 3x3) 64 (16 per
2x2 tile); its transforms cost more adds (their entries reach 8 and 1/24), which on these cores the saved
multiplies more than pay for: forward + backward at batch 64, 64 -> 64 channels at 32x32, 70 ms with F(2x2)
and 55 ms with F(4x4); 128 at 16x16 55 and 44 ms; 256 at 8x8 54 and 42 ms (2 cores, AVX-512, 2026-12-07).

The two transforms are memory-bound: the transformed input V is 2.25x the input
(36 values per 16 input pixels), so writing all of it out and reading it back
for the matrix multiplies costs more than the multiplies save. Instead the
tiles go in chunks of a few rows of tiles: transform a chunk into a small V
(36, C, chunk), run the 36 matrix multiplies into a small M (36, F, chunk),
inverse-transform M into the output, and go on, while V and M are still in
cache. Both transforms work on whole rows of tiles, so their inner loops run
over contiguous (or stride-4) rows. The chunks are shared out to one Python
thread per core, each running serial kernels and a single-threaded matrix
multiply (``threads.py`` says why).

The weight gradient runs the same chunks backwards: V of x again, dM = A dY A^T of
the output gradient's 4x4 tiles, and 36 products dM[k] @ V[k]^T summed over the
chunks into dU (36, F, C), then dW = G^T dU G.
"""
import numpy as np
from numba import prange

from ... import workspace
from .. import reference
from .jit import kernel
from .threads import threads as _threads

CHUNK_BYTES = 1 << 21   # bytes of V (and of M) per chunk: within the L2 cache where the channels allow,
MIN_TILES = 256         # but at least this many tiles: the 36 products (F, C) @ (C, tiles) run slowly on fewer
# Values of V from which the chunks go to one thread per core: a convolution of that size takes milliseconds,
# so the threads' start (tens of microseconds, a pool already running) pays far sooner than a Numba loop's does.
THREADS_FROM = 1 << 16
TILE, POINTS = 4, 36    # F(4x4, 3x3): 4x4 output tiles from 6x6 input tiles, 36 products
# The transforms' constants as float32, exact in float32 and float64: with Python's 4 or 4.0 Numba would
# compute a float32 kernel's every combination in float64 and convert back.
TWO, FOUR, FIVE, EIGHT = (np.float32(k) for k in (2, 4, 5, 8))


@kernel
def _input_tiles(x, v, row0, th, tw, ph, pw):
    """V[:, :, tiles of tile-rows row0 ...] = B^T d B for every 6x6 tile d (4 apart) of every channel."""
    n, c, h, w = x.shape
    wp = 4 * tw + 2
    rows_here = v.shape[2] // tw
    cols = min(w, wp - pw)
    for ci in prange(c):
        d = np.zeros((6, wp), x.dtype)      # the 6 (zero-padded) input rows under one row of tiles
        t = np.empty((6, wp), x.dtype)      # B^T d: combinations of those rows
        b, ty = row0 // th, row0 % th       # image and tile row, stepped below (no division per row)
        for r in range(rows_here):
            for a in range(6):              # element loops, not slices: rows are short (6-34 pixels), and
                iy = 4 * ty - ph + a        # a slice's set-up cost more than the copy on small maps
                if 0 <= iy < h:
                    src = x[b, ci, iy]
                    for j in range(cols):
                        d[a, pw + j] = src[j]
                else:
                    for j in range(wp):
                        d[a, j] = 0
            for k in range(wp):             # B^T's rows, sharing their common sums
                d1, d2, d3, d4 = d[1, k], d[2, k], d[3, k], d[4, k]
                p, q, s, e = d4 - FOUR * d2, d3 - FOUR * d1, d4 - d2, TWO * (d3 - d1)
                t[0, k] = FOUR * d[0, k] - FIVE * d2 + d4
                t[1, k], t[2, k] = p + q, p - q
                t[3, k], t[4, k] = s + e, s - e
                t[5, k] = FOUR * d1 - FIVE * d3 + d[5, k]
            base = r * tw
            for i in range(6):   # (B^T d) B: the same combinations along the row, 4 pixels per tile
                t_row, out = t[i], v[6 * i:6 * i + 6, ci]
                for tx in range(tw):
                    k, o = np.uintp(4 * tx), np.uintp(base + tx)
                    d1, d2, d3, d4 = t_row[k + 1], t_row[k + 2], t_row[k + 3], t_row[k + 4]
                    p, q, s, e = d4 - FOUR * d2, d3 - FOUR * d1, d4 - d2, TWO * (d3 - d1)
                    out[0, o] = FOUR * t_row[k] - FIVE * d2 + d4
                    out[1, o], out[2, o] = p + q, p - q
                    out[3, o], out[4, o] = s + e, s - e
                    out[5, o] = FOUR * d1 - FIVE * d3 + t_row[k + 5]
            ty += 1
            if ty == th:
                b, ty = b + 1, 0


@kernel
def _output_tiles(m, y, bias, row0, th, tw):
    """y[tiles of tile-rows row0 ...] = A^T M A for every 4x4 output tile, plus the bias (F,) (zeros for none)."""
    n, f, ho, wo = y.shape
    rows_here = m.shape[2] // tw
    for fi in prange(f):
        s = np.empty((4, 6, tw), m.dtype)   # A^T m for one row of tiles
        out = np.empty((4, 4 * tw), m.dtype)
        bv = bias[fi]
        b, ty = row0 // th, row0 % th
        for r in range(rows_here):
            base = r * tw
            for k in range(6):              # A^T's rows: m0 + (m1 + m2) + (m3 + m4), ..., (m1 - m2) + 8 (m3 - m4) + m5
                m0, m1, m2 = m[k, fi], m[6 + k, fi], m[12 + k, fi]
                m3, m4, m5 = m[18 + k, fi], m[24 + k, fi], m[30 + k, fi]
                for tx in range(tw):
                    p = np.uintp(base + tx)
                    a1, b1, a2, b2 = m1[p] + m2[p], m1[p] - m2[p], m3[p] + m4[p], m3[p] - m4[p]
                    s[0, k, tx], s[1, k, tx] = m0[p] + a1 + a2, b1 + TWO * b2
                    s[2, k, tx], s[3, k, tx] = a1 + FOUR * a2, b1 + EIGHT * b2 + m5[p]
            for i in range(4):
                row = s[i]
                for tx in range(tw):
                    a1, b1 = row[1, tx] + row[2, tx], row[1, tx] - row[2, tx]
                    a2, b2 = row[3, tx] + row[4, tx], row[3, tx] - row[4, tx]
                    out[i, 4 * tx] = row[0, tx] + a1 + a2 + bv
                    out[i, 4 * tx + 1] = b1 + TWO * b2 + bv
                    out[i, 4 * tx + 2] = a1 + FOUR * a2 + bv
                    out[i, 4 * tx + 3] = b1 + EIGHT * b2 + row[5, tx] + bv
                if 4 * ty + i < ho:
                    dst = y[b, fi, 4 * ty + i]
                    for j in range(wo):
                        dst[j] = out[i, j]
            ty += 1
            if ty == th:
                b, ty = b + 1, 0


@kernel
def _weights(w9, g, u):
    """U (36, F, C) = G g G^T per 3x3 filter g: w9 (F, 9, C), the filters' taps each a row over the input
    channels, so that every loop below runs along C; G (6, 3) in the arrays' dtype."""
    f, c = w9.shape[0], w9.shape[2]
    for fi in prange(f):
        t = np.empty((6, 3, c), u.dtype)                 # G g, all input channels at once
        for a in range(6):
            for j in range(3):
                for ci in range(c):
                    t[a, j, ci] = g[a, 0] * w9[fi, j, ci] + g[a, 1] * w9[fi, 3 + j, ci] + g[a, 2] * w9[fi, 6 + j, ci]
        for a in range(6):                               # (G g) G^T
            for b in range(6):
                out = u[6 * a + b, fi]
                for ci in range(c):
                    out[ci] = t[a, 0, ci] * g[b, 0] + t[a, 1, ci] * g[b, 1] + t[a, 2, ci] * g[b, 2]


@kernel
def _output_grad_tiles(gy, dm, row0, th, tw):
    """dM[:, :, tiles of tile-rows row0 ...] = A dY A^T for every 4x4 tile dY of gy (_output_tiles's transpose)."""
    n, f, ho, wo = gy.shape
    rows_here = dm.shape[2] // tw
    for fi in prange(f):
        g = np.zeros((4, 4 * tw), gy.dtype)   # the 4 rows of dY over one row of tiles; zero past the edge
        s = np.empty((6, 4 * tw), gy.dtype)   # A dY: rows g0, g0 + g1 + g2 + g3, g0 - g1 + g2 - g3,
        b, ty = row0 // th, row0 % th         # g0 + 2 g1 + 4 g2 + 8 g3, g0 - 2 g1 + 4 g2 - 8 g3, g3
        for r in range(rows_here):
            for a in range(4):
                if 4 * ty + a < ho:
                    src = gy[b, fi, 4 * ty + a]
                    for j in range(wo):
                        g[a, j] = src[j]
                else:
                    for j in range(4 * tw):
                        g[a, j] = 0
            for k in range(4 * tw):
                e1, o1 = g[0, k] + g[2, k], g[1, k] + g[3, k]
                e2, o2 = g[0, k] + FOUR * g[2, k], TWO * g[1, k] + EIGHT * g[3, k]
                s[0, k], s[5, k] = g[0, k], g[3, k]
                s[1, k], s[2, k], s[3, k], s[4, k] = e1 + o1, e1 - o1, e2 + o2, e2 - o2
            base = r * tw
            for i in range(6):   # (A dY) A^T: the same combinations of each tile's 4 columns
                s_row, out = s[i], dm[6 * i:6 * i + 6, fi]
                for tx in range(tw):
                    k, p = np.uintp(4 * tx), np.uintp(base + tx)
                    e1, o1 = s_row[k] + s_row[k + 2], s_row[k + 1] + s_row[k + 3]
                    e2, o2 = s_row[k] + FOUR * s_row[k + 2], TWO * s_row[k + 1] + EIGHT * s_row[k + 3]
                    out[0, p], out[5, p] = s_row[k], s_row[k + 3]
                    out[1, p], out[2, p], out[3, p], out[4, p] = e1 + o1, e1 - o1, e2 + o2, e2 - o2
            ty += 1
            if ty == th:
                b, ty = b + 1, 0


@kernel
def _weights_backward(du, g, gw9):
    """gw9 (F, 9, C) = G^T dU G per filter, each tap a row over the input channels: _weights, transposed."""
    f, c = gw9.shape[0], gw9.shape[2]
    for fi in prange(f):
        t = np.empty((3, 6, c), gw9.dtype)               # G^T dU, all input channels at once
        for i in range(3):
            for b in range(6):
                for ci in range(c):
                    t[i, b, ci] = (g[0, i] * du[b, fi, ci] + g[1, i] * du[6 + b, fi, ci] + g[2, i] * du[12 + b, fi, ci]
                                   + g[3, i] * du[18 + b, fi, ci] + g[4, i] * du[24 + b, fi, ci]
                                   + g[5, i] * du[30 + b, fi, ci])
        for i in range(3):                               # (G^T dU) G
            for j in range(3):
                out = gw9[fi, 3 * i + j]
                for ci in range(c):
                    out[ci] = (t[i, 0, ci] * g[0, j] + t[i, 1, ci] * g[1, j] + t[i, 2, ci] * g[2, j]
                               + t[i, 3, ci] * g[3, j] + t[i, 4, ci] * g[4, j] + t[i, 5, ci] * g[5, j])


def winograd_weights(w):
    """As ``reference.winograd_weights(w, tile=4)``: w (F, C, 3, 3) -> U (36, F, C) = G w G^T per filter.

    U is borrowed from the workspace (valid until the next call): at 512 channels it is 36 MB, and a
    fresh array's page faults measured a third of the convolution it is made for."""
    (f, c), dtype = w.shape[:2], w.dtype
    u = workspace.borrow("winograd_u", (POINTS, f, c), dtype, np)
    _weights(w.size, np.ascontiguousarray(w.reshape(f, c, 9).transpose(0, 2, 1)), _matrix_g(dtype), u)
    return u


def _matrix_g(dtype):
    """F(4x4, 3x3)'s G (6, 3) (kernels/reference.py) in ``dtype``: 1/6 rounded to float32 only for float32."""
    return np.asarray(reference.WINOGRAD[TILE][0], dtype)


def deal_chunks(rows, tw, wide, itemsize):
    """How ``rows`` rows of ``tw`` tiles are shared out: (per_chunk, each worker thread's chunk starts).

    Chunks of ``per_chunk`` rows, dealt round-robin to one thread per core (to one thread below THREADS_FROM
    values); ``wide``: values per tile of the chunk's largest array (36 channels' worth), which sets the chunk
    size. ``functional/conv_scratch.py`` reads the same answer for the plan's scratch list.
    """
    workers = _threads.workers if wide * rows * tw >= THREADS_FROM else 1
    per_chunk = max(1, min(-(-rows // workers), max(-(-MIN_TILES // tw), CHUNK_BYTES // (wide * tw * itemsize))))
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
    """The chunk's V (36, C, tiles) and M (or dM) (36, F, tiles), reused from call to call."""
    return (workspace.borrow(name + "_v", (POINTS, c, tiles), dtype, np),
            workspace.borrow(name + "_m", (POINTS, f, tiles), dtype, np))


def tile_grid(out_hw):
    """(rows, columns) of 4x4 output tiles covering an output map (a partial last tile where it does not divide)."""
    return -(-out_hw[0] // TILE), -(-out_hw[1] // TILE)


def winograd_conv(x, u, padding, out_hw, bias=None):
    """As ``reference.winograd_conv``: x (N, C, H, W), U (36, F, C) -> y (N, F, Ho, Wo), 3x3 stride 1."""
    x = np.ascontiguousarray(x)
    (n, c, _, _), f, (ho, wo) = x.shape, u.shape[1], out_hw
    th, tw = tile_grid(out_hw)
    y = np.empty((n, f, ho, wo), x.dtype)
    b = np.zeros(f, x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)

    def job(starts, per_chunk, name):   # transform, multiply and inverse-transform each chunk in turn
        for row0 in starts:
            tiles = (min(n * th, row0 + per_chunk) - row0) * tw
            v, m = _chunk_buffers("winograd" + name, c, f, tiles, x.dtype)
            _input_tiles.serial(x, v, row0, th, tw, *padding)
            np.matmul(u, v, out=m)
            _output_tiles.serial(m, y, b, row0, th, tw)

    _share_chunks(n * th, tw, POINTS * max(c, f), x.itemsize, job)
    return y


def winograd_weight_grad(x, gy, padding):
    """As ``reference.winograd_weight_grad(x, gy, padding, tile=4)``: dW (F, C, 3, 3) = G^T [sum over tiles of
    dM @ V^T] G."""
    x, gy = np.ascontiguousarray(x), np.ascontiguousarray(gy, dtype=x.dtype)
    (n, c, _, _), f = x.shape, gy.shape[1]
    th, tw = tile_grid(gy.shape[2:])

    def job(starts, per_chunk, name):   # this thread's dU, summed over its chunks (workspace: 36 MB at 512 channels)
        name = "winograd_dw" + name
        du = workspace.borrow(name + "_du", (POINTS, f, c), x.dtype, np)
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

    du, *others = _share_chunks(n * th, tw, POINTS * max(c, f), x.itemsize, job)
    for other in others:
        du += other
    gw9 = np.empty((f, 9, c), x.dtype)
    _weights_backward(gw9.size, du, _matrix_g(x.dtype), gw9)
    return np.ascontiguousarray(gw9.transpose(0, 2, 1)).reshape(f, c, 3, 3)


__all__ = ["winograd_conv", "winograd_weight_grad", "winograd_weights"]
