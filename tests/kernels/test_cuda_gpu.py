"""On a real GPU (``@pytest.mark.gpu``; skipped, saying why, anywhere else): the same kernel comparisons
as tests/kernels/test_cuda_kernels.py with CuPy arrays, a training step of every zoo model against the NumPy
CPU, and the device-path rules (dropout drawn on the device, optimizer state and checkpoints,
zoo.summary, mixed-device errors, labels on the device).

Without a GPU, CI runs every one of them with ``import cupy`` bound to the strict stand-in
(tests/gpu_standin/test_gpu_tests.py: device arrays that refuse implicit host conversion, kernels on the
host emulator); on a real GPU none has run yet (none was lent). Run ``python -m pytest -m gpu`` on a GPU.
"""
import copy

import numpy as np
import pytest
from hypothesis import given, settings
from support.cuda_cases import TOLERANCE, compare_all, windowed

import zoo
from minitorch_cnn.device import gpu_available, to_numpy

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not gpu_available(), reason="no CUDA GPU visible to CuPy (or no CuPy); "
                                 "tests/gpu_standin/test_gpu_tests.py runs these on the strict stand-in")]


def to_gpu(a):
    import cupy
    return cupy.asarray(a)


def to_host(a):
    return to_numpy(a)


@settings(max_examples=40, deadline=None)
@given(windowed())
def test_every_cuda_kernel_matches_reference_on_the_gpu(cfg):
    from minitorch_cnn.kernels import cuda
    for name, err in compare_all(cuda, cfg, to_gpu, to_host).items():
        # the GPU contracts a*b + c into one rounding (FMA) and CuPy compiles with -ftz: a little slack in float32
        assert err <= 4 * TOLERANCE[cfg["dtype"]], (name, err)


@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_training_step_on_the_gpu_equals_numpy(name):
    from test_cuda_emulator import sgd_step

    import minitorch_cnn as mt
    import zoo
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((2, 3, 32, 32)), rng.integers(0, 10, 2)
    model = zoo.get_model(name).to(np.float64)
    for m in model.modules():   # dropout masks differ between devices by design
        if type(m).__name__ == "Dropout":
            m.p = 0.0
    twin = copy.deepcopy(model).to("cuda")
    want = sgd_step(model, x, y, seed=1)
    with mt.using_device("cuda"):
        got = sgd_step(twin, mt.Tensor(x).data, y, seed=1)   # the input goes to the device once
    # A gradient that is zero in exact arithmetic (the bias of a batch norm that another batch norm follows)
    # is rounding noise on both devices, and so is its update: measured against 1e-4 of the largest gradient /
    # parameter, as test_cuda_emulator does (run under tests/support/strict_cupy, VGG16's was 3e-16 / 1e-8).
    n_grads = len(list(model.parameters()))
    n_out = len(got) - 1 - 2 * n_grads
    largest_grad = max(np.abs(g).max(initial=0.0) for g in want[n_out + 1:n_out + 1 + n_grads])
    largest_param = max(np.abs(p).max(initial=0.0) for p in want[n_out + 1 + n_grads:])
    for i, (a, b) in enumerate(zip(got, want)):
        scale = max(np.abs(b).max(initial=0.0), 1e-8)
        if i > n_out:
            scale = max(scale, 1e-4 * (largest_grad if i <= n_out + n_grads else largest_param))
        assert np.abs(to_host(a) - b).max(initial=0.0) / scale < 1e-9, (name, i)


def test_device_path_rules():
    import cupy

    import minitorch_cnn as mt
    import zoo
    from minitorch_cnn import random as mt_random
    model = zoo.get_model("lenet5", in_channels=1).to("cuda")
    opt = mt.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = mt.Tensor(cupy.asarray(np.random.default_rng(0).standard_normal((2, 1, 32, 32)), dtype=np.float32))
    loss = mt.functional.cross_entropy(model.train()(x), cupy.asarray([1, 2]))   # labels on the device
    loss.backward()
    opt.step()
    assert all(isinstance(opt.state[p]["momentum_buffer"], cupy.ndarray) for p in model.parameters())
    model.to("cpu")
    opt.zero_grad()
    mt.functional.cross_entropy(model(mt.Tensor(x.numpy())), np.array([1, 2])).backward()
    opt.step()   # the state follows the parameters back to the host
    assert all(isinstance(opt.state[p]["momentum_buffer"], np.ndarray) for p in model.parameters())

    mt.manual_seed(3)
    mask = mt_random.uniform((4, 5), like=cupy.zeros(1, np.float32))
    mt.manual_seed(3)
    again = mt_random.uniform((4, 5), like=cupy.zeros(1, np.float32))
    assert isinstance(mask, cupy.ndarray) and cupy.array_equal(mask, again)

    with pytest.raises(RuntimeError, match="different devices"):
        mt.Tensor(np.ones(3, np.float32)) + mt.Tensor(cupy.ones(3, np.float32))
    with pytest.raises(ValueError, match="target values"):
        mt.functional.cross_entropy(mt.Tensor(cupy.zeros((2, 3), np.float32)), cupy.asarray([0, 5]))

    model.to("cuda")
    assert "Total params" in zoo.summary(model, (1, 32, 32))


def checkpoint_meta():
    """The smallest meta document zoo.run.checkpoint.validate_meta accepts (every field zoo.train writes)."""
    from zoo.run.checkpoint import CONFIG_FIELDS, POSITION_FIELDS
    config = dict.fromkeys(CONFIG_FIELDS, None) | {"model": "lenet5", "dataset": "mnist"}
    return {"model": "lenet5", "dataset": "mnist", "in_channels": 1, "num_classes": 10, "classes": list("0123456789"),
            "config": config, "position": dict.fromkeys(POSITION_FIELDS, 0), "history": [], "invocations": [],
            "rng_state": {}}


def test_checkpoint_round_trip_on_the_gpu(tmp_path):
    import cupy

    import minitorch_cnn as mt
    import zoo
    from zoo.run.checkpoint import load_checkpoint, save_checkpoint
    model = zoo.get_model("lenet5", in_channels=1).to("cuda")
    opt = mt.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = mt.Tensor(cupy.ones((2, 1, 32, 32), np.float32))
    mt.functional.cross_entropy(model.train()(x), np.array([1, 2])).backward()
    opt.step()
    save_checkpoint(tmp_path / "c.npz", model, opt, checkpoint_meta())
    _, model_state, opt_state = load_checkpoint(tmp_path / "c.npz")
    fresh = zoo.get_model("lenet5", in_channels=1).to("cuda").load_state_dict(model_state)
    fresh_opt = mt.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    fresh_opt.load_state_dict(opt_state)
    for p, q in zip(model.parameters(), fresh.parameters()):
        assert isinstance(q.data, cupy.ndarray) and cupy.array_equal(p.data, q.data)
        assert isinstance(fresh_opt.state[q]["momentum_buffer"], cupy.ndarray)
