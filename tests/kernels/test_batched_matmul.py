"""kernels/cpu/threads.batched_matmul: a batch of per-image products shared out to one thread per core
equals NumPy's matmul over the batch, for every layout the convolutions hand it."""
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


def test_the_work_is_split_over_the_pool_only_from_the_threshold(monkeypatch):
    ranges = []
    monkeypatch.setattr(threads.threads, "workers", 2)
    real_run = threads.threads.run
    monkeypatch.setattr(threads.threads, "run", lambda fn, parts: ranges.append(list(parts)) or real_run(fn, parts))
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
