"""The CPU's SGD and Adam step kernels (kernels/cpu/optim.py), called per parameter, against the NumPy rules they
replace (``_update`` of optim/sgd.py and optim/adam.py): bit-equal in float32 and float64 for every option, with the
state they leave."""
import numpy as np
import pytest

from minitorch_cnn import optim
from minitorch_cnn.kernels import cpu
from minitorch_cnn.nn.module import Parameter

CASES = [(optim.SGD, {"lr": 0.1}), (optim.SGD, {"lr": 0.1, "weight_decay": 0.05}),
         (optim.SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4}),
         (optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
         (optim.SGD, {"lr": 0.1, "momentum": 0.5, "dampening": 0.3}), (optim.Adam, {"lr": 0.01}),
         (optim.Adam, {"lr": 0.01, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1}),
         (optim.Adam, {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True})]
STATE = ("momentum_buffer", "step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")


def _train(cls, kw, dtype, kernel, steps=4, transposed=False):
    rng = np.random.default_rng(0)
    params = [Parameter(rng.standard_normal(s).astype(dtype)) for s in [(64, 300), (7,), (3, 4, 5)]]
    if transposed:   # a parameter whose array is not C-contiguous takes the NumPy rule, the others the kernel
        params[0].data = params[0].data.T
    opt = cls(params, **kw)
    if not kernel:
        opt._step_each = lambda *a: False
    for _ in range(steps):
        for p in params:
            p.grad = rng.standard_normal(p.data.shape).astype(dtype)
        opt.step()
    return [p.data.copy() for p in params], [[opt.state[p].get(k) for k in STATE] for p in params]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls,kw", CASES, ids=[f"{c.__name__}-{i}" for i, (c, _) in enumerate(CASES)])
def test_kernel_step_equals_the_numpy_rule_bit_for_bit(cls, kw, dtype):
    for transposed in (False, True):
        (got, got_state), (want, want_state) = (_train(cls, kw, dtype, k, transposed=transposed) for k in (True, False))
        for a, b in zip(got, want):
            assert a.dtype == dtype and np.array_equal(a, b)
        for a, b in zip(sum(got_state, []), sum(want_state, [])):
            assert (a is None) == (b is None) and (a is None or np.array_equal(a, b))

@pytest.mark.parametrize("cls,name", [(optim.SGD, "sgd_step"), (optim.Adam, "adam_step")])
def test_the_kernel_runs_on_the_cpu_once_per_parameter(cls, name, monkeypatch):
    params = [Parameter(np.ones((3, 2), np.float32)), Parameter(np.ones(4, np.float32))]
    calls, original = [], getattr(cpu, name)
    monkeypatch.setattr(cpu, name, lambda *a: calls.append(a) or original(*a))
    opt = cls(params, lr=0.5)
    for p in params:
        p.grad = np.ones(p.data.shape, np.float32)
    opt.step()
    assert len(calls) == 2 and all(np.all(p.data < 1) for p in params)


def test_the_kernels_reject_what_they_cannot_write():
    with pytest.raises(ValueError, match="sgd_step: expected C-contiguous"):
        cpu.sgd_step(np.ones((3, 2)).T, np.ones((2, 3)), np.ones((2, 3)), 0.1, 0.9, 0, 0, False, True)
    with pytest.raises(ValueError, match="adam_step: expected C-contiguous"):
        cpu.adam_step(np.ones(3), np.ones(3), np.ones(4), np.ones(3), None, (0.9, 0.99), 1e-8, 0, 0.1, 1.0)
