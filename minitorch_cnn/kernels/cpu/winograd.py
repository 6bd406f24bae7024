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
single-threaded matrix multiply (``_Threads`` says why).
"""
import contextlib
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import prange

from ... import workspace
from .conv import _im2col
from .jit import PARALLEL_FROM, kernel

CHUNK_BYTES = 1 << 22   # bytes of V (and of M) per chunk: within the L3 cache, a few chunks per convolution


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
        for r in range(rows_here):
            b, ty = (row0 + r) // th, (row0 + r) % th
            for a in range(4):
                iy = 2 * ty - ph + a
                if 0 <= iy < h:
                    d[a, pw:pw + cols] = x[b, ci, iy, :cols]
                else:
                    d[a, :] = 0
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


@kernel
def _output_tiles(m, y, bias, has_bias, row0, th, tw):
    """y[tiles of tile-rows row0 ...] = A^T M A for every 2x2 output tile, plus the bias."""
    n, f, ho, wo = y.shape
    rows_here = m.shape[2] // tw
    for fi in prange(f):
        s = np.empty((2, 4, tw), m.dtype)   # A^T m for one row of tiles
        out = np.empty((2, 2 * tw), m.dtype)
        bv = bias[fi] if has_bias else 0.0
        for r in range(rows_here):
            b, ty = (row0 + r) // th, (row0 + r) % th
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
                    y[b, fi, 2 * ty + i, :] = out[i, :wo]


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


def winograd_weights(w):
    """As ``reference.winograd_weights``: w (F, C, 3, 3) -> U (16, F, C) = G w G^T per filter."""
    u = np.empty((16,) + w.shape[:2], w.dtype)
    _weights(w.size, np.ascontiguousarray(w), u)
    return u


def _run_chunks(x, u, y, bias, has_bias, padding, th, tw, starts, per_chunk, name):
    """Transform, multiply and inverse-transform the chunks of tile-rows starting at ``starts``, serially."""
    rows, c, f = y.shape[0] * th, x.shape[1], u.shape[1]
    for row0 in starts:
        tiles = (min(rows, row0 + per_chunk) - row0) * tw
        v = workspace.borrow("winograd_v" + name, (16, c, tiles), x.dtype, np)
        m = workspace.borrow("winograd_m" + name, (16, f, tiles), x.dtype, np)
        _input_tiles.serial(x, v, row0, th, tw, *padding)
        np.matmul(u, v, out=m)
        _output_tiles.serial(m, y, bias, has_bias, row0, th, tw)


def winograd_conv(x, u, padding, out_hw, bias=None):
    """As ``reference.winograd_conv``: x (N, C, H, W), U (16, F, C) -> y (N, F, Ho, Wo), 3x3 stride 1."""
    x = np.ascontiguousarray(x)
    (n, c, _, _), f, (ho, wo) = x.shape, u.shape[1], out_hw
    th, tw = -(-ho // 2), -(-wo // 2)
    y = np.empty((n, f, ho, wo), x.dtype)
    rows = n * th
    workers = _threads.workers if 16 * max(c, f) * rows * tw >= PARALLEL_FROM else 1
    per_chunk = max(1, min(-(-rows // workers), CHUNK_BYTES // (16 * max(c, f) * tw * x.itemsize)))
    b = np.zeros(1, x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    starts = list(range(0, rows, per_chunk))
    args = (x, u, y, b, bias is not None, padding, th, tw)
    if workers == 1 or len(starts) == 1:
        _run_chunks(*args, starts, per_chunk, "")
        return y
    with _threads.one_blas_thread():
        jobs = [_threads.pool.submit(_run_chunks, *args, starts[i::workers], per_chunk, str(i))
                for i in range(workers)]
        for job in jobs:
            job.result()
    return y


def _weight_grad_images(x, gy, padding, starts, per_chunk, name):
    """sum over the chunks of images at ``starts`` of dY_chunk @ cols_chunk^T: (F, C*9), serially."""
    (n, c, _, _), (f, ho, wo) = x.shape, gy.shape[1:]
    total = np.zeros((f, c * 9), x.dtype)
    for n0 in starts:
        n1 = min(n, n0 + per_chunk)
        cols = workspace.borrow("winograd_cols" + name, (c * 9, (n1 - n0) * ho * wo), x.dtype, np)
        _im2col.serial(x[n0:n1], cols, 3, 3, 1, 1, *padding, 1, 1, ho, wo)
        gy_chunk = gy[n0:n1].transpose(1, 0, 2, 3).reshape(f, -1)     # a small copy, in cache
        total += gy_chunk @ cols.T
    return total


def winograd_weight_grad(x, gy, padding):
    """As ``reference.winograd_weight_grad``: dW (F, C, 3, 3) = sum over images of dY @ im2col(x)^T.

    In chunks of images, one thread per core: each builds the columns of a few images only (no
    column matrix for the whole batch) and multiplies them with single-threaded BLAS.
    """
    x, gy = np.ascontiguousarray(x), np.ascontiguousarray(gy)
    n, hw = x.shape[0], gy.shape[2] * gy.shape[3]
    workers = _threads.workers if gy.size * x.shape[1] * 9 >= PARALLEL_FROM else 1
    per_chunk = max(1, min(-(-n // workers), 2048 // hw))
    starts = list(range(0, n, per_chunk))
    workers = min(workers, len(starts))
    if workers == 1:
        total = _weight_grad_images(x, gy, padding, starts, per_chunk, "")
    else:
        with _threads.one_blas_thread():
            jobs = [_threads.pool.submit(_weight_grad_images, x, gy, padding, starts[i::workers], per_chunk, str(i))
                    for i in range(workers)]
            total = sum(job.result() for job in jobs)
    return total.reshape(gy.shape[1], x.shape[1], 3, 3)


class _Threads:
    """One Python thread per core, each running whole chunks, with single-threaded BLAS meanwhile.

    Threading each step instead (a parallel transform, a multi-threaded matrix multiply, a parallel
    inverse, per chunk) hands the cores back and forth three times a chunk; on a loaded 2-core
    machine OpenBLAS's threads on these small multiplies made a convolution up to 8x slower
    (measured 3.2 s against 0.13 s with one BLAS thread). The serial kernels release the GIL.
    """
    def __init__(self):
        self.workers = numba.get_num_threads()
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="winograd")
        try:
            from threadpoolctl import ThreadpoolController
            self.blas = ThreadpoolController()   # built once: finding the BLAS libraries takes milliseconds
        except ImportError:
            self.blas = None

    def one_blas_thread(self):
        return self.blas.limit(limits=1, user_api="blas") if self.blas else contextlib.nullcontext()


_threads = _Threads()


__all__ = ["winograd_conv", "winograd_weight_grad", "winograd_weights"]
