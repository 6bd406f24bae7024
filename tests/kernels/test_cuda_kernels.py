"""The CUDA kernels (kernels/cuda/*.cu through their wrappers) against kernels/reference, on the host
emulator: every kernel, hypothesis shapes (odd sizes, fewer elements than threads, one block and many,
grid-stride loops, stride / padding / dilation), blocks and threads run in forward and in reverse order.

float64 must agree to 1e-12 relative, float32 to 1e-5. The worst error seen per kernel is printed
at the end of the run (the issue's closing note quotes it).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.cuda_cases import TOLERANCE, compare_all, windowed

from minitorch_cnn import backend
from minitorch_cnn.kernels import cuda
from minitorch_cnn.kernels.cuda import emulator, launch

pytestmark = pytest.mark.skipif(not emulator.available(), reason=str(emulator.unavailable_reason()))

WORST = {}


@pytest.fixture(scope="module", autouse=True)
def print_worst_errors():
    yield
    if WORST:
        print("\nworst error of the CUDA kernels on the emulator vs kernels/reference (relative to max |ref|):")
        for (name, dtype), err in sorted(WORST.items()):
            print(f"  {name:<34} {dtype:<8} {err:.2e}")


@settings(max_examples=60, deadline=None)
@given(cfg=windowed(), threads=st.sampled_from([32, 256]), max_blocks=st.sampled_from([1, 3, 65535]),
       order=st.sampled_from(["forward", "reverse"]))
def test_every_cuda_kernel_matches_reference(cfg, threads, max_blocks, order):
    # threads / max_blocks: one block with fewer elements than threads, a grid-stride loop over a
    # capped grid, and many blocks; the reductions always use REDUCE_THREADS, with 1, 3 or many blocks.
    with pytest.MonkeyPatch.context() as mp, emulator.launch_order(order):
        mp.setattr(launch, "THREADS", threads)
        mp.setattr(launch, "MAX_BLOCKS", max_blocks)
        errs = compare_all(cuda, cfg)
    for name, err in errs.items():
        key = (name, np.dtype(cfg["dtype"]).name)
        WORST[key] = max(WORST.get(key, 0.0), err)
        assert err <= TOLERANCE[cfg["dtype"]], f"{name} {cfg}: error {err:.2e}"


def test_large_reduction_in_both_orders_is_identical():
    # many values per channel (each thread of the block sums several before the tree), both orders:
    # the tree fixes the summation order, so forward and reverse must agree bit for bit.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 21, 19)) * 5 + 2
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    with emulator.launch_order("forward"):
        fwd = cuda.batch_norm_forward(x, gamma, beta, 1e-5)
    with emulator.launch_order("reverse"):
        rev = cuda.batch_norm_forward(x, gamma, beta, 1e-5)
    for a, b in zip(fwd, rev):
        assert np.array_equal(a, b)
    assert abs(fwd[1] - x.mean(axis=(0, 2, 3))).max() < 1e-12


def test_wrappers_reject_integer_arrays_and_the_emulator_checks_argument_types():
    with pytest.raises(TypeError, match="float32 or float64"):
        cuda.clamp_forward(np.arange(5))
    kernel = backend.cuda_module(launch.source("elementwise"), np.zeros(1)).get_function("clamp_forward_f32")
    x = np.ones(4, np.float32)
    y, mask = np.empty_like(x), np.empty(4, np.bool_)
    with pytest.raises(TypeError, match=r"argument 3 \(long long size\).*int64"):
        kernel((1,), (32,), (x, y, mask, 4, np.float32(6), np.int32(1)))          # a Python int
    with pytest.raises(TypeError, match=r"argument 0 .*float32"):
        kernel((1,), (32,), (x.astype(np.float64), y, mask, np.int64(4), np.float32(6), np.int32(1)))
    with pytest.raises(TypeError, match="expected 6 arguments"):
        kernel((1,), (32,), (x, y, mask))
    kernel((1,), (32,), (x * -1, y, mask, np.int64(4), np.float32(6), np.int32(1)))
    assert not y.any() and not mask.any()
