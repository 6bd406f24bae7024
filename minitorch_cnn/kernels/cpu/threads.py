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


def batched_matmul(a, b, out):
    """a (F, K) or (N, F, K) @ b (N, K, P) -> out (N, F, P): NumPy's matmul over a batch of images, the images
    split into one contiguous range per core, each range one matmul call with single-threaded BLAS.

    NumPy's matmul over a stack calls sgemm once per image, and OpenBLAS threads each call on its own: on a
    1x1 convolution's products (64 -> 128 channels at 16x16, batch 64) its second thread hardly helps, 2.03 ms
    with two BLAS threads against 1.27 ms for the images in two halves on two Python threads, one BLAS thread
    each (32 -> 64 at 32x32: 2.51 against 1.62 ms; 2 cores, AVX-512, OpenBLAS SkylakeX).
    """
    n = b.shape[0]
    workers = min(threads.workers, n)
    if workers < 2 or out.size * a.shape[-1] < BATCHED_FROM:
        return np.matmul(a, b, out=out)
    bounds = [n * i // workers for i in range(workers + 1)]

    def product(i):
        lo, hi = bounds[i], bounds[i + 1]
        np.matmul(a if a.ndim == 2 else a[lo:hi], b[lo:hi], out=out[lo:hi])

    threads.run(product, range(workers))
    return out
