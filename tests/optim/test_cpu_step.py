"""The CPU's SGD step kernel (kernels/cpu/optim.py), called per parameter, against the NumPy rule it replaces
(optim/sgd.py ``_update``): bit-equal in float32 and float64 for every option, with the state it leaves."""
import numpy as np
import pytest

from minitorch_cnn import optim
from minitorch_cnn.kernels import cpu
from minitorch_cnn.nn.module import Parameter

CASES = [{"lr": 0.1}, {"lr": 0.1, "weight_decay": 0.05}, {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4},
         {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
         {"lr": 0.1, "momentum": 0.5, "dampening": 0.3}]


def _train(kw, dtype, kernel, steps=4, transposed=False):
    rng = np.random.default_rng(0)
    params = [Parameter(rng.standard_normal(s).astype(dtype)) for s in [(64, 300), (7,), (3, 4, 5)]]
    if transposed:   # a parameter whose array is not C-contiguous takes the NumPy rule, the others the kernel
        params[0].data = params[0].data.T
    opt = optim.SGD(params, **kw)
    if not kernel:
        opt._step_each = lambda *a: False
    for _ in range(steps):
        for p in params:
            p.grad = rng.standard_normal(p.data.shape).astype(dtype)
        opt.step()
    return [p.data.copy() for p in params], [opt.state[p].get("momentum_buffer") for p in params]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", CASES)
def test_kernel_step_equals_the_numpy_rule_bit_for_bit(kw, dtype):
    for transposed in (False, True):
        (got, got_buf), (want, want_buf) = (_train(kw, dtype, k, transposed=transposed) for k in (True, False))
        for a, b in zip(got, want):
            assert a.dtype == dtype and np.array_equal(a, b)
        for a, b in zip(got_buf, want_buf):
            assert (a is None) == (b is None) and (a is None or np.array_equal(a, b))

def test_the_kernel_runs_on_the_cpu_and_rejects_what_it_cannot_write():
    params = [Parameter(np.ones((3, 2), np.float32))]
    calls = []
    opt = optim.SGD(params, lr=0.5)
    original = cpu.sgd_step
    try:
        cpu.sgd_step = lambda *a: calls.append(a) or original(*a)
        params[0].grad = np.ones((3, 2), np.float32)
        opt.step()
    finally:
        cpu.sgd_step = original
    assert len(calls) == 1 and np.array_equal(params[0].data, np.full((3, 2), 0.5, np.float32))
    with pytest.raises(ValueError, match="sgd_step: expected C-contiguous"):
        cpu.sgd_step(np.ones((3, 2)).T, np.ones((2, 3)), np.ones((2, 3)), 0.1, 0.9, 0, 0, False, True)
