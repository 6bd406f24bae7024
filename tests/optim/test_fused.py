"""The GPU's fused optimizer step (optim/fused.py, kernels/cuda/optim.cu), run on the CUDA emulator, against the
per-parameter NumPy rule the CPU runs: the same numbers (float64 to 1e-12, float32 to 1e-5; they are in fact
bit-equal, the emulator compiles without FMA contraction), one kernel launch per group per step, and the
packed arrays followed when something replaces a parameter's array or the state."""
import numpy as np
import pytest

import minitorch_cnn as mt
from minitorch_cnn import optim
from minitorch_cnn.device import to_numpy
from minitorch_cnn.kernels.cuda import emulator
from minitorch_cnn.nn.module import Parameter

pytestmark = pytest.mark.skipif(not emulator.available(), reason=str(emulator.unavailable_reason()))
SHAPES = [(3, 4), (5,), (2, 3, 3), (1,)]
TOL = {np.float64: 1e-12, np.float32: 1e-5}
CASES = [
    (optim.SGD, {"lr": 0.1}),
    (optim.SGD, {"lr": 0.1, "weight_decay": 0.05}),
    (optim.SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-2}),
    (optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    (optim.SGD, {"lr": 0.1, "momentum": 0.5, "dampening": 0.3}),
    (optim.Adam, {"lr": 0.01}),
    (optim.Adam, {"lr": 0.01, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1}),
    (optim.Adam, {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
]


def train(device, cls, kw, dtype, steps=5, skip=None, swap_at=None, seed=0, momentum_at=None):
    """``steps`` steps of ``cls(**kw)`` on ``device`` with drawn gradients; ``skip``: (step, parameter) left
    without a gradient; ``swap_at``: the step before which parameter 0's array is replaced (as Module.to does).
    Returns the final values on the host and the emulator's launches of the optimizer kernels."""
    rng = np.random.default_rng(seed)
    before = sum(emulator.launches[k] for k in emulator.launches if k.startswith(("sgd_step", "adam_step")))
    dev = mt.device(device)
    with mt.using_device(dev):
        params = [Parameter(dev.send(rng.standard_normal(s).astype(dtype))) for s in SHAPES]
        opt = cls(params, **kw)
        for step in range(steps):
            if step == swap_at:
                params[0].data = dev.send(to_numpy(params[0].data).copy())
            if step == momentum_at:      # a schedule turning momentum on: the buffers start then
                opt.param_groups[0]["momentum"] = 0.9
            for i, p in enumerate(params):
                g = rng.standard_normal(p.shape).astype(dtype)
                p.grad = None if skip == (step, i) else dev.send(g)
            opt.step()
        after = sum(emulator.launches[k] for k in emulator.launches if k.startswith(("sgd_step", "adam_step")))
        return [to_numpy(p.data).copy() for p in params], after - before, opt


def assert_close(got, want, dtype):
    for g, w in zip(got, want):
        assert not np.isnan(g).any()
        assert np.max(np.abs(g - w) / np.maximum(np.abs(w), 1.0)) <= TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("cls", "kw"), CASES, ids=[f"{c.__name__}-{kw}" for c, kw in CASES])
def test_the_fused_step_is_the_per_parameter_rule_in_one_launch_per_step(cls, kw, dtype):
    want, none, _ = train("cpu", cls, kw, dtype)
    got, launches, opt = train("cuda-emulator", cls, kw, dtype)
    assert none == 0
    assert launches == 5, "one fused launch per step for the group"
    assert_close(got, want, dtype)
    # the state is still one array per parameter, of its shape, as state_dict shows it
    state = opt.state_dict()["state"]
    assert sorted(state) == ([0, 1, 2, 3] if cls is optim.Adam or kw.get("momentum") else [])
    for i, s in state.items():
        assert all(v.shape == SHAPES[i] for v in s.values() if hasattr(v, "shape")), s


@pytest.mark.parametrize(("cls", "kw"), [CASES[3], CASES[7]], ids=["sgd-nesterov", "adam-amsgrad"])
def test_a_parameter_without_a_gradient_and_a_replaced_array_give_the_same_numbers(cls, kw):
    # step 2 leaves parameter 1 without a gradient (Adam's steps t then differ: the per-parameter rule runs),
    # step 3 replaces parameter 0's array: the group is packed again from what is there
    for case in ({"skip": (2, 1)}, {"swap_at": 3}):
        want, _, _ = train("cpu", cls, kw, np.float64, steps=6, **case)
        got, launches, _ = train("cuda-emulator", cls, kw, np.float64, steps=6, **case)
        assert_close(got, want, np.float64)
        assert 3 <= launches <= 6, (case, launches)


def test_a_loaded_state_dict_continues_as_on_the_cpu():
    kw = {"lr": 0.05, "momentum": 0.9, "nesterov": True}
    want, _, cpu_opt = train("cpu", optim.SGD, kw, np.float64, steps=4)
    dev = mt.device("cuda-emulator")
    with mt.using_device(dev):
        params = [Parameter(dev.send(v)) for v in want]
        opt = optim.SGD(params, **kw)
        opt.load_state_dict(cpu_opt.state_dict())
        rng = np.random.default_rng(9)
        grads = [rng.standard_normal(s) for s in SHAPES]
        for p, g in zip(params, grads):
            p.grad = dev.send(g)
        opt.step()
        got = [to_numpy(p.data) for p in params]
    for p, g in zip(cpu_opt.param_groups[0]["params"], grads):
        p.grad = g
    cpu_opt.step()
    assert_close(got, [p.data for p in cpu_opt.param_groups[0]["params"]], np.float64)


def test_a_nan_gradient_spreads_as_on_the_cpu():
    dev = mt.device("cuda-emulator")
    outs = []
    for device in ("cpu", dev):
        with mt.using_device(device):
            d = mt.device(device) if isinstance(device, str) else device
            p = Parameter(d.send(np.ones(4)))
            opt = optim.Adam([p], lr=0.1, amsgrad=True)
            p.grad = d.send(np.array([1.0, np.nan, -1.0, 0.0]))
            opt.step()
            outs.append(to_numpy(p.data))
    np.testing.assert_array_equal(np.isnan(outs[0]), np.isnan(outs[1]))
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-12)


def test_momentum_switched_on_mid_run_starts_its_buffers_as_on_the_cpu():
    want, _, _ = train("cpu", optim.SGD, {"lr": 0.1}, np.float64, steps=6, momentum_at=3)
    got, launches, opt = train("cuda-emulator", optim.SGD, {"lr": 0.1}, np.float64, steps=6, momentum_at=3)
    assert_close(got, want, np.float64)
    assert launches == 6 and sorted(opt.state_dict()["state"]) == [0, 1, 2, 3]
