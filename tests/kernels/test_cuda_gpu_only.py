"""The GPU-only kernels (kernels/cuda GPU_ONLY) on the emulator against the host's way of doing the same:
batch norm's forward that also updates the running statistics, against reference.batch_norm_forward followed
by functional/norm.update_running (float64 to 1e-12, float32 to 1e-5, outputs NaN-filled before the launch).
The fused optimizer steps are held to the optimizers' per-parameter rules in tests/optim/test_fused.py."""
import numpy as np
import pytest
from support.cuda_cases import TOLERANCE, nan_aware_err

from minitorch_cnn.functional.norm import update_running
from minitorch_cnn.kernels import cuda, reference
from minitorch_cnn.kernels.cuda import emulator

pytestmark = pytest.mark.skipif(not emulator.available(), reason=str(emulator.unavailable_reason()))


def test_every_gpu_only_kernel_is_exported_and_outside_the_shared_names():
    assert all(callable(getattr(cuda, name)) for name in cuda.GPU_ONLY)
    assert not set(cuda.GPU_ONLY) & set(cuda.__all__)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (4, 7), (1, 2, 300), (3, 1, 1, 1)])
def test_batch_norm_forward_tracking_updates_the_running_statistics_as_the_host_does(shape, dtype):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    c = shape[1]
    gamma, beta = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    start = [rng.standard_normal(c).astype(dtype), rng.random(c).astype(dtype) + 0.5]
    want = reference.batch_norm_forward(x, gamma, beta, 1e-5)
    want_running = [a.copy() for a in start]
    update_running(*want_running, 0.3, want[1], want[2], x.size // c)
    running = [a.copy() for a in start]
    got = cuda.batch_norm_forward_tracking(x, gamma, beta, 1e-5, *running, 0.3)
    for name, g, w in zip(("y", "mean", "var", "inv_std", "running_mean", "running_var"),
                          (*got, *running), (*want, *want_running)):
        assert nan_aware_err(f"batch_norm_forward_tracking ({name})", g, w) <= TOLERANCE[dtype], name


def test_batch_norm_forward_without_tracking_leaves_other_arrays_alone_and_refuses_a_wrong_dtype():
    x = np.random.default_rng(2).standard_normal((2, 3, 4))
    ones, zeros = np.ones(3), np.zeros(3)
    cuda.batch_norm_forward(x, ones, zeros, 1e-5)
    with pytest.raises(ValueError, match=r"batch_norm_forward_tracking: running statistics must be contiguous "
                                         r"\(3,\) float64 arrays, got float32 \(3,\)"):
        cuda.batch_norm_forward_tracking(x, ones, zeros, 1e-5, np.zeros(3, np.float32), np.ones(3), 0.1)


def test_a_batch_norm_module_on_the_emulator_counts_and_tracks_as_on_the_cpu():
    # three training batches through nn.BatchNorm2d: the kernel updates the running statistics and counts
    # num_batches_tracked (one increment per launch, however many blocks); the CPU does it in NumPy
    import minitorch_cnn as mt
    from minitorch_cnn import nn
    from minitorch_cnn.device import to_numpy
    rng = np.random.default_rng(3)
    batches = [rng.standard_normal((4, 5, 3, 3)) for _ in range(3)]
    out = {}
    for name in ("cpu", "cuda-emulator"):
        dev = mt.device(name)
        with mt.using_device(dev):
            bn = nn.BatchNorm2d(5).to(dev)
            bn.double()
            before = emulator.launches["batch_norm_forward_f64"]
            for b in batches:
                bn(mt.Tensor(dev.send(b)))
            out[name] = {k: to_numpy(v) for k, v in bn.state_dict().items()}
            out[name]["launches"] = emulator.launches["batch_norm_forward_f64"] - before
    assert out["cpu"]["num_batches_tracked"] == out["cuda-emulator"]["num_batches_tracked"] == 3
    assert out["cuda-emulator"]["launches"] == 3 and out["cpu"]["launches"] == 0
    for key in ("running_mean", "running_var"):
        np.testing.assert_allclose(out["cuda-emulator"][key], out["cpu"][key], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_in_one_launch_equals_the_numpy_loss_and_gradient(dtype, reduction, smoothing):
    # a row holding a NaN stays NaN in the loss and the gradient on both paths
    import minitorch_cnn as mt
    from minitorch_cnn import functional as F
    from minitorch_cnn.device import to_numpy
    rng = np.random.default_rng(4)
    z, t = (rng.standard_normal((6, 10)) * 3).astype(dtype), rng.integers(0, 10, 6)
    z[4, 3] = np.nan
    gy = rng.standard_normal(6).astype(dtype) if reduction == "none" else None
    got = {}
    for name in ("cpu", "cuda-emulator"):
        dev = mt.device(name)
        with mt.using_device(dev):
            before = emulator.launches[f"cross_entropy_forward_{'f64' if dtype == np.float64 else 'f32'}"]
            zt = mt.Tensor(dev.send(z), requires_grad=True)
            loss = F.cross_entropy(zt, t, label_smoothing=smoothing, reduction=reduction)
            loss.backward(None if gy is None else dev.send(gy))
            launched = emulator.launches[f"cross_entropy_forward_{'f64' if dtype == np.float64 else 'f32'}"] - before
            got[name] = (to_numpy(loss.data), to_numpy(zt.grad), launched)
    assert got["cpu"][2] == 0 and got["cuda-emulator"][2] == 1
    for what, cpu, gpu in zip(("loss", "grad"), got["cpu"][:2], got["cuda-emulator"][:2]):
        assert nan_aware_err(f"cross_entropy ({what})", gpu, cpu) <= TOLERANCE[dtype], what
