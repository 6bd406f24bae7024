"""Numba Winograd F(m x m, 3x3) convolution, m = 2 or 4, cache-blocked (the math: ``kernels/reference.py``;
the transforms: ``winograd_tiles.py``).

F(4x4, 3x3) multiplies 36 values per 4x4 output tile and channel pair, F(2x2, 3x3) 64 (16 per 2x2 tile) and
im2col 144; its transforms cost more adds (their entries reach 8 and 1/24), which on these cores the saved
multiplies more than pay for: forward + backward at batch 64, 64 -> 64 channels at 32x32, 70 ms with F(2x2)
and 55 ms with F(4x4); 128 at 16x16 55 and 44 ms; 256 at 8x8 54 and 42 ms (2 cores, AVX-512, 2026-12-07).
Its float32 rounding is larger too (functional/conv.py, ``winograd_tile``, says where each runs).

The two transforms are memory-bound: the transformed input V is (m+2)^2/m^2 times the
input (2.25x for m = 4, 4x for m = 2), so writing all of it out and reading it back
for the matrix multiplies costs more than the multiplies save. Instead the
tiles go in chunks of a few rows of tiles: transform a chunk into a small V
((m+2)^2, C, chunk), run the (m+2)^2 matrix multiplies into a small M ((m+2)^2, F, chunk),
inverse-transform M into the output, and go on, while V and M are still in
cache. The chunks are shared out to one Python thread per core, each running serial
kernels and a single-threaded matrix multiply (``threads.py`` says why).

The weight gradient runs the same chunks backwards: V of x again, dM = A dY A^T of
the output gradient's m x m tiles, and (m+2)^2 products dM[k] @ V[k]^T summed over the
chunks into dU ((m+2)^2, F, C), then dW = G^T dU G.
"""
import numpy as np

from ... import workspace
from .. import reference
from .threads import threads as _threads
from .winograd_tiles import TRANSFORMS, weights, weights_backward

CHUNK_BYTES = 1 << 21   # bytes of V (and of M) per chunk: within the L2 cache where the channels allow,
MIN_TILES = 256         # but at least this many tiles: the products (F, C) @ (C, tiles) run slowly on fewer
# Values of V from which the chunks go to one thread per core: a convolution of that size takes milliseconds,
# so the threads' start (tens of microseconds, a pool already running) pays far sooner than a Numba loop's does.
THREADS_FROM = 1 << 16


def _matrix_g(tile, dtype):
    """F(m x m, 3x3)'s G (m+2, 3) (kernels/reference.py) in ``dtype``: 1/6 rounded to float32 only for float32."""
    return np.asarray(reference.WINOGRAD[tile][0], dtype)


def winograd_weights(w, tile):
    """As ``reference.winograd_weights``: w (F, C, 3, 3) -> U ((m+2)^2, F, C) = G w G^T per filter, m = ``tile``.

    U is borrowed from the workspace (valid until the next call): at 512 channels and m = 4 it is 36 MB, and
    a fresh array's page faults measured a third of the convolution it is made for."""
    (f, c), dtype = w.shape[:2], w.dtype
    u = workspace.borrow("winograd_u", ((tile + 2) ** 2, f, c), dtype, np)
    weights(w.size, np.ascontiguousarray(w.reshape(f, c, 9).transpose(0, 2, 1)), _matrix_g(tile, dtype), u)
    return u


def deal_chunks(rows, tw, wide, itemsize):
    """How ``rows`` rows of ``tw`` tiles are shared out: (per_chunk, each worker thread's chunk starts).

    Chunks of ``per_chunk`` rows, dealt round-robin to one thread per core (to one thread below THREADS_FROM
    values); ``wide``: values per tile of the chunk's largest array ((m+2)^2 channels' worth), which sets the
    chunk size. ``functional/conv_scratch.py`` reads the same answer for the plan's scratch list.
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


def _chunk_buffers(name, c, f, tiles, points, dtype):
    """The chunk's V (points, C, tiles) and M (or dM) (points, F, tiles), reused from call to call."""
    return (workspace.borrow(name + "_v", (points, c, tiles), dtype, np),
            workspace.borrow(name + "_m", (points, f, tiles), dtype, np))


def winograd_conv(x, u, padding, out_hw, bias=None):
    """As ``reference.winograd_conv``: x (N, C, H, W), U ((m+2)^2, F, C) -> y (N, F, Ho, Wo), 3x3 stride 1;
    U's size says m."""
    x = np.ascontiguousarray(x)
    (n, c, _, _), (points, f, _), tile = x.shape, u.shape, reference.winograd_tile_of(u)
    (th, tw), (input_tiles, output_tiles, _) = reference.winograd_tile_grid(out_hw, tile), TRANSFORMS[tile]
    y = np.empty((n, f) + tuple(out_hw), x.dtype)
    b = np.zeros(f, x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)

    def job(starts, per_chunk, name):   # transform, multiply and inverse-transform each chunk in turn
        for row0 in starts:
            tiles = (min(n * th, row0 + per_chunk) - row0) * tw
            v, m = _chunk_buffers("winograd" + name, c, f, tiles, points, x.dtype)
            input_tiles.serial(x, v, row0, th, tw, *padding)
            np.matmul(u, v, out=m)
            output_tiles.serial(m, y, b, row0, th, tw)

    _share_chunks(n * th, tw, points * max(c, f), x.itemsize, job)
    return y


def winograd_weight_grad(x, gy, padding, tile):
    """As ``reference.winograd_weight_grad``: dW (F, C, 3, 3) = G^T [sum over tiles of dM @ V^T] G, m = ``tile``."""
    x, gy = np.ascontiguousarray(x), np.ascontiguousarray(gy, dtype=x.dtype)
    (n, c, _, _), f, points = x.shape, gy.shape[1], (tile + 2) ** 2
    (th, tw), (input_tiles, _, output_grad_tiles) = reference.winograd_tile_grid(gy.shape[2:], tile), TRANSFORMS[tile]

    def job(starts, per_chunk, name):   # this thread's dU, summed over its chunks (workspace: 36 MB at 512 channels)
        du = workspace.borrow("winograd_dw" + name + "_du", (points, f, c), x.dtype, np)
        for i, row0 in enumerate(starts):
            tiles = (min(n * th, row0 + per_chunk) - row0) * tw
            # the forward's chunk buffers: dx's convolution, which reuses them, runs after this one
            v, dm = _chunk_buffers("winograd" + name, c, f, tiles, points, x.dtype)
            input_tiles.serial(x, v, row0, th, tw, *padding)
            output_grad_tiles.serial(gy, dm, row0, th, tw)
            if i == 0:
                np.matmul(dm, v.transpose(0, 2, 1), out=du)
            else:
                du += np.matmul(dm, v.transpose(0, 2, 1), out=workspace.borrow("winograd_dw" + name + "_product",
                                                                               du.shape, x.dtype, np))
        return du

    du, *others = _share_chunks(n * th, tw, points * max(c, f), x.itemsize, job)
    for other in others:
        du += other
    gw9 = np.empty((f, 9, c), x.dtype)
    weights_backward(gw9.size, du, _matrix_g(tile, x.dtype), gw9)
    return np.ascontiguousarray(gw9.transpose(0, 2, 1)).reshape(f, c, 3, 3)


__all__ = ["winograd_conv", "winograd_weight_grad", "winograd_weights"]
