"""kernels/cpu/threads.batched_matmul: a batch of per-image products shared out to one thread per core
equals NumPy's matmul over the batch, for every layout the convolutions hand it; with a bias, and
matmul_channels_first (the same products over channel-first columns) and summed_matmul_nt (their sum over
the batch, a 1x1 convolution's dW) too, on every kernel module."""
import numpy as np
import pytest

from minitorch_cnn.kernels import cpu, cuda, reference
from minitorch_cnn.kernels.cpu import threads


def _cases(rng, dtype):
    """(a, b) pairs: a shared 2-D weight, a per-image 3-D one, the im2col view (K, N*P) seen as (N, K, P),
    and batches of 1, 3 and 8 images (the first cannot be split, the second splits unevenly)."""
    for n, f, k, p in ((1, 4, 3, 5), (3, 7, 5, 9), (8, 16, 27, 100)):
        b = rng.standard_normal((n, k, p)).astype(dtype)
        yield rng.standard_normal((f, k)).astype(dtype), b
        yield rng.standard_normal((n, f, k)).astype(dtype), b
        cols = rng.standard_normal((k, n * p)).astype(dtype)
        yield rng.standard_normal((f, k)).astype(dtype), cols.reshape(k, n, p).transpose(1, 0, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batched_from", [0, 1 << 40])   # always shared out; never
def test_shared_out_products_equal_numpys_matmul(dtype, batched_from, monkeypatch):
    monkeypatch.setattr(threads, "BATCHED_FROM", batched_from)
    rng = np.random.default_rng(0)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for a, b in _cases(rng, dtype):
        want = np.matmul(a, b)
        out = np.full(want.shape, np.nan, dtype)
        assert cpu.batched_matmul(a, b, out) is out
        np.testing.assert_allclose(out, want, rtol=tol, atol=tol * np.abs(want).max())


def _spy_on_the_pool(monkeypatch, workers):
    """The pool with ``workers`` threads; the list its run() calls append their parts to."""
    ranges = []
    monkeypatch.setattr(threads.threads, "workers", workers)
    real_run = threads.threads.run
    monkeypatch.setattr(threads.threads, "run", lambda fn, parts: ranges.append(list(parts)) or real_run(fn, parts))
    return ranges


def test_the_work_is_split_over_the_pool_only_from_the_threshold(monkeypatch):
    ranges = _spy_on_the_pool(monkeypatch, 2)
    a, b = np.ones((4, 3), np.float32), np.ones((5, 3, 6), np.float32)
    monkeypatch.setattr(threads, "BATCHED_FROM", a.shape[0] * b.shape[0] * b.shape[2] * a.shape[1] + 1)
    cpu.batched_matmul(a, b, np.empty((5, 4, 6), np.float32))
    assert ranges == []                      # 360 multiply-adds: below the threshold, one matmul call
    monkeypatch.setattr(threads, "BATCHED_FROM", 360)
    out = cpu.batched_matmul(a, b, np.empty((5, 4, 6), np.float32))
    assert ranges == [[0, 1]] and (out == 3).all()


def test_every_kernel_module_offers_the_batched_product():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((2, 4, 5))
    for module in (reference, cuda):
        out = np.empty((2, 3, 5))
        np.testing.assert_allclose(module.batched_matmul(a, b, out), a @ b, rtol=1e-12)


def _channels_first_cases(rng, dtype):
    """(a, b) for the channel-first products: 1, 3 and 9 images (one range, uneven ranges), 1 to 16 pixels."""
    for n, f, k, p in ((1, 4, 3, 5), (3, 7, 5, 1), (9, 16, 27, 4), (9, 5, 33, 16)):
        yield rng.standard_normal((f, k)).astype(dtype), rng.standard_normal((n, k, p)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batched_from", [0, 1 << 40])   # always shared out; never
@pytest.mark.parametrize("with_bias", [True, False])
def test_products_with_a_bias_equal_numpys(dtype, batched_from, with_bias, monkeypatch):
    """batched_matmul's bias, and matmul_channels_first (through its workspace-sized scratch), with or without
    a bias, against matmul + bias, on every kernel module; the CPU's shared out or not."""
    monkeypatch.setattr(threads, "BATCHED_FROM", batched_from)
    rng = np.random.default_rng(2)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for module in (cpu, reference, cuda):
        for a, b in list(_channels_first_cases(rng, dtype)) + [c for c in _cases(rng, dtype) if c[0].ndim == 2]:
            bias = rng.standard_normal(a.shape[0]).astype(dtype) if with_bias else None
            want = np.matmul(a, b) + (0 if bias is None else bias.reshape(-1, 1))
            n, k, p = b.shape
            out = np.full(want.shape, np.nan, dtype)
            assert module.batched_matmul(a, b, out, bias=bias) is out
            np.testing.assert_allclose(out, want, rtol=tol, atol=tol * np.abs(want).max())
            out, b_mat, out_mat = (np.full(s, np.nan, dtype) for s in (want.shape, (k, n * p), (a.shape[0], n * p)))
            assert module.matmul_channels_first(a, b, out, bias, b_mat, out_mat) is out
            np.testing.assert_allclose(out, want, rtol=tol, atol=tol * np.abs(want).max())


def test_channels_first_products_split_the_images_over_the_pool(monkeypatch):
    ranges = _spy_on_the_pool(monkeypatch, 3)
    monkeypatch.setattr(threads, "BATCHED_FROM", 0)
    a, b = np.ones((4, 3), np.float32), np.ones((5, 3, 2), np.float32)
    out = cpu.matmul_channels_first(a, b, np.empty((5, 4, 2), np.float32), np.arange(4, dtype=np.float32),
                                    np.empty((3, 10), np.float32), np.empty((4, 10), np.float32))
    assert ranges == [[0, 1, 2]] and (out == 3 + np.arange(4).reshape(4, 1)).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batched_from", [0, 1 << 40])   # always shared out; never
@pytest.mark.parametrize("chunk_bytes", [1, 1 << 20])    # one image a chunk (several chunks a thread); all at once
def test_summed_products_equal_the_product_over_the_batch(dtype, batched_from, chunk_bytes, monkeypatch):
    """summed_matmul_nt (a 1x1 convolution's dW: sum over images of a[n] @ b[n]^T) on every kernel module, with
    batches of 1, 3 and 9 images (one range, uneven ranges, a last chunk shorter than the others)."""
    monkeypatch.setattr(threads, "BATCHED_FROM", batched_from)
    monkeypatch.setattr(threads, "SUMMED_CHUNK_BYTES", chunk_bytes)
    rng = np.random.default_rng(4)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for n, f, c, p in ((1, 4, 3, 5), (3, 7, 5, 1), (9, 16, 27, 64)):
        a, b = rng.standard_normal((n, f, p)).astype(dtype), rng.standard_normal((n, c, p)).astype(dtype)
        want = np.einsum("nfp,ncp->fc", a.astype(np.float64), b.astype(np.float64))
        for module in (cpu, reference, cuda):
            out = np.full((f, c), np.nan, dtype)
            assert module.summed_matmul_nt(a, b, out) is out
            np.testing.assert_allclose(out, want, rtol=tol, atol=tol * np.abs(want).max())
