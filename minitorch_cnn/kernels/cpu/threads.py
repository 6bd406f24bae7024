"""One Python thread per core for work that calls BLAS: the pool Winograd's chunks and the per-image
matrix products share, each of its threads running single-threaded BLAS while it works.

Why not OpenBLAS's own threads: on the small products these layers run (16 products of a Winograd chunk,
one 1x1 convolution's image) its second thread hardly starts, or hands the cores back and forth with
Numba's. Whole images or chunks per Python thread keep both cores busy; BLAS and the serial Numba kernels
release the GIL.
"""
import contextlib
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np


class _Threads:
    """One Python thread per core, each running whole chunks, with single-threaded BLAS meanwhile.

    Threading each step instead (a parallel transform, a multi-threaded matrix multiply, a parallel
    inverse, per chunk) hands the cores back and forth three times a chunk; on a loaded 2-core
    machine OpenBLAS's threads on these small multiplies made a convolution up to 8x slower
    (measured 3.2 s against 0.13 s with one BLAS thread). The serial kernels release the GIL.
    """
    def __init__(self):
        self.workers = numba.get_num_threads()
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="minitorch_cnn")
        try:
            from threadpoolctl import ThreadpoolController
            self.blas = ThreadpoolController()   # built once: finding the BLAS libraries takes milliseconds
        except ImportError:
            self.blas = None

    def one_blas_thread(self):
        return self.blas.limit(limits=1, user_api="blas") if self.blas else contextlib.nullcontext()

    def run(self, fn, parts):
        """fn(part) for each part, one per worker thread, with single-threaded BLAS; their results, in order."""
        with self.one_blas_thread():
            jobs = [self.pool.submit(fn, part) for part in parts]
            return [j.result() for j in jobs]


threads = _Threads()

# Multiply-adds from which a batch of products is shared out to the threads: below it, handing the images
# to the pool (tens of microseconds) costs more than the second core saves.
BATCHED_FROM = 1 << 22


def _share_images(n, work, part):
    """part(lo, hi) over images 0..n: one contiguous range per core from BATCHED_FROM multiply-adds of ``work``
    (fewer cores when there are fewer images), else one call over all; the parts' results, in order."""
    workers = min(threads.workers, n)
    if workers < 2 or work < BATCHED_FROM:
        return [part(0, n)]
    bounds = [n * i // workers for i in range(workers + 1)]
    return threads.run(lambda i: part(bounds[i], bounds[i + 1]), range(workers))


def batched_matmul(a, b, out, bias=None):
    """a (F, K) or (N, F, K) @ b (N, K, P) -> out (N, F, P), plus bias (F,) per row when given: NumPy's matmul
    over a batch of images, the images split into one contiguous range per core, each range one matmul call
    with single-threaded BLAS, then the bias added to that range by the same thread.

    NumPy's matmul over a stack calls sgemm once per image, and OpenBLAS threads each call on its own: on a
    1x1 convolution's products (64 -> 128 channels at 16x16, batch 64) its second thread hardly helps, 2.03 ms
    with two BLAS threads against 1.27 ms for the images in two halves on two Python threads, one BLAS thread
    each (32 -> 64 at 32x32: 2.51 against 1.62 ms; 2 cores, AVX-512, OpenBLAS SkylakeX). The bias in the same
    threads rather than a pass after them (a single-threaded NumPy add): products and bias, 32 -> 64 at 32x32
    2.67 -> 1.99 ms, 64 -> 128 at 16x16 1.74 -> 1.41, 128 -> 256 at 8x8 1.36 -> 1.17. (Adding it image by image
    while the image is in cache measured no better than a range at a time.)
    """
    bias = None if bias is None else bias.reshape(-1, 1)

    def product(lo, hi):
        np.matmul(a if a.ndim == 2 else a[lo:hi], b[lo:hi], out=out[lo:hi])
        if bias is not None:
            out[lo:hi] += bias

    _share_images(b.shape[0], out.size * a.shape[-1], product)
    return out


def matmul_channels_first(a, b, out, bias, b_mat, out_mat):
    """a (F, K) @ b (N, K, P) -> out (N, F, P), plus bias (F,) when given (None: none), as products over the
    channel-first columns: b copied into b_mat (K, N*P), a @ b_mat into out_mat (F, N*P), and back into out;
    b_mat is left holding b's copy (a 1x1 convolution's dW reuses dY's). For few pixels per image, where one
    product per image is a thin matrix times a few columns.

    Each core takes a range of images and does all three steps on its columns: the two transposing copies
    (Numba loops; NumPy's run 4 elements per inner loop at 2x2) shared out too, and out's range written
    while out_mat's is in cache. Batch 64, 2 threads, AVX-512, with bias, against one 2-thread BLAS product
    between single-threaded NumPy copies: 256 -> 512 at 4x4 1.51 -> 1.12 ms, 512 -> 512 at 4x4 2.28 -> 1.91,
    512 -> 1024 at 2x2 1.44 -> 1.04, 1024 -> 1024 at 2x2 2.40 -> 1.87 (NumPy's copies in the threads: 1.22 and
    2.10 at 2x2).
    """
    p = b.shape[2]

    def product(lo, hi):
        cols = slice(lo * p, hi * p)
        _to_columns(b, b_mat, lo, hi)
        np.matmul(a, b_mat[:, cols], out=out_mat[:, cols])
        _from_columns(out_mat, bias, out, lo, hi)

    _share_images(b.shape[0], out.size * a.shape[-1], product)
    return out


# Bytes of per-image products a thread holds before summing them into its total (summed_matmul_nt): 256 kB
# to 1 MB measured the same (1 MB a shade faster at 8x8 and 4x4), 64 kB slower by up to 15 %.
SUMMED_CHUNK_BYTES = 1 << 20


def summed_matmul_nt(a, b, out):
    """out (F, C) = sum over images n of a[n] @ b[n]^T, a (N, F, P), b (N, C, P): a 1x1 convolution's dW.

    Each core takes a range of images and multiplies them a chunk at a time (NumPy's matmul over the chunk,
    b's transpose a BLAS flag, single-threaded BLAS), summing the chunk's products into its own total; the
    totals are added at the end. No channel-first copies of a and b (reference.py's way: one product over
    the batch's columns). Batch 64, 2 threads, AVX-512, against the copies (single-threaded NumPy) and one
    2-thread product: 32 -> 64 at 32x32 4.94 -> 1.91 ms, 64 -> 128 at 16x16 2.76 -> 1.49, 128 -> 128 at 16x16
    4.28 -> 2.63, 128 -> 256 at 8x8 1.78 -> 1.52, 256 -> 256 at 8x8 2.64 -> 2.90, but 256 -> 512 at 4x4 1.47
    -> 3.01 (few pixels an image: there the layer keeps the copies, functional/conv.py).
    """
    n, f, c = a.shape[0], a.shape[1], b.shape[1]
    per_chunk = max(1, SUMMED_CHUNK_BYTES // (f * c * a.itemsize))

    def total(lo, hi):
        acc, products = np.zeros((f, c), a.dtype), np.empty((min(per_chunk, hi - lo), f, c), a.dtype)
        for start in range(lo, hi, per_chunk):
            chunk = products[:min(per_chunk, hi - start)]
            np.matmul(a[start:start + len(chunk)], b[start:start + len(chunk)].transpose(0, 2, 1), out=chunk)
            acc += chunk.sum(axis=0)
        return acc

    np.sum(_share_images(n, n * f * c * a.shape[2], total), axis=0, out=out)
    return out


@numba.njit(nogil=True, cache=True)
def _to_columns(b, b_mat, lo, hi):
    """Images lo..hi of b (N, K, P) into their columns of b_mat (K, N*P): b_mat[k, i*P + q] = b[i, k, q]."""
    p = b.shape[2]
    for k in range(b.shape[1]):
        for i in range(lo, hi):
            for q in range(p):
                b_mat[k, i * p + q] = b[i, k, q]


@numba.njit(nogil=True, cache=True)
def _from_columns(out_mat, bias, out, lo, hi):
    """Columns of images lo..hi of out_mat (F, N*P) into out (N, F, P), plus bias[f] (bias None: compiled
    without it)."""
    f, p = out.shape[1], out.shape[2]
    for i in range(lo, hi):
        for k in range(f):
            if bias is None:
                for q in range(p):
                    out[i, k, q] = out_mat[k, i * p + q]
            else:
                for q in range(p):
                    out[i, k, q] = out_mat[k, i * p + q] + bias[k]
