"""block_sum's shared buffer holds REDUCE_THREADS threads of a 1-D block: a kernel that reduces with it, launched
with more (or with a 2-D block), stops with __trap() instead of writing past the buffer; the emulator reports
it as a failed launch naming the kernel. Launched here directly, bypassing launch.per_block (which never does)."""
import numpy as np
import pytest

from minitorch_cnn.kernels.cuda import emulator, launch

pytestmark = pytest.mark.skipif(not emulator.available(), reason=str(emulator.unavailable_reason()))


def batch_norm_args(n=2, c=3, m=8):
    x = np.random.default_rng(0).standard_normal((n, c, m)).astype(np.float32)
    ones, zeros = np.ones(c, np.float32), np.zeros(c, np.float32)
    out = [np.empty_like(x)] + [np.empty(c, np.float32) for _ in range(3)]
    running = [np.zeros(c, np.float32), np.ones(c, np.float32)]   # not tracked (track 0): left alone
    no_clamp = (np.float64(-np.inf), np.float64(np.inf))   # low, high: the output unclamped (no fused activation)
    return (x, ones, zeros, np.float64(1e-5), *out, *running, np.float64(0.1), np.int32(0), np.zeros(1, np.int64),
            np.int32(0), *no_clamp, np.int32(n), np.int32(c), np.int32(m)), out


@pytest.mark.parametrize("block", [(launch.REDUCE_THREADS * 2,), (32, 2)])
def test_a_reduction_launched_past_its_shared_buffer_traps(block):
    kernel = launch.load_kernel("norm", "batch_norm_forward", np.float32, np.zeros(1, np.float32))
    args, _ = batch_norm_args()
    with pytest.raises(RuntimeError, match=r"batch_norm_forward_f32 failed: __trap\(\) called"):
        kernel((3,), block, args)


def test_the_largest_allowed_block_runs():
    kernel = launch.load_kernel("norm", "batch_norm_forward", np.float32, np.zeros(1, np.float32))
    args, (y, mean, _, _) = batch_norm_args()
    kernel((3,), (launch.REDUCE_THREADS,), args)
    np.testing.assert_allclose(mean, args[0].mean(axis=(0, 2)), rtol=1e-5)
