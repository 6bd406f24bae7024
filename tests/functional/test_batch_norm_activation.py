"""``F.batch_norm(..., activation=)``: batch norm and ReLU / ReLU6 as one Function (BatchNormTrain).

In training the fused Function must equal batch norm then the activation, run as two Functions: the output,
dx, dgamma, dbeta, the running statistics and num_batches_tracked, in float32 and float64, on the "cpu" device
(the Numba kernels) and on "cuda-emulator" (norm.cu on the host emulator). The kernels themselves are held to
kernels/reference by the case table (tests/kernels/test_tiers.py). Its gradient is also checked by finite
differences, and in eval mode (a Function per step) against the same composition.
"""
import numpy as np
import pytest

import minitorch_cnn as mt
from minitorch_cnn import functional as F
from minitorch_cnn.device import to_numpy
from minitorch_cnn.kernels.cuda import emulator

ACTIVATIONS = {"relu": F.relu, "relu6": F.relu6}
DEVICES = ["cpu", pytest.param("cuda-emulator", marks=pytest.mark.skipif(
    not emulator.available(), reason=str(emulator.unavailable_reason())))]


def _arrays(dtype, shape=(6, 4, 5, 5), seed=0):
    """x spread so that both ReLU6's bounds are crossed (gamma up to 4), gamma, beta and a gradient."""
    rng = np.random.default_rng(seed)
    c = shape[1]
    return [a.astype(dtype) for a in (rng.standard_normal(shape) * 2 + 1, rng.uniform(0.5, 4, c),
                                      rng.standard_normal(c), rng.standard_normal(shape))]


def _run(dev, arrays, fused, activation):
    """One training step's batch norm (+ activation) on ``dev``: (z, dx, dgamma, dbeta, running mean, running
    var, num_batches_tracked), as host arrays."""
    x, gamma, beta, gz = arrays
    c = x.shape[1]
    with mt.using_device(dev):
        d = mt.device(dev)
        t = [mt.Tensor(d.send(a), requires_grad=True) for a in (x, gamma, beta)]
        running = [d.send(np.zeros(c, x.dtype)), d.send(np.ones(c, x.dtype))]
        counter = d.send(np.zeros((), np.int64))
        if fused:
            z = F.batch_norm(t[0], *running, t[1], t[2], True, 0.1, num_batches_tracked=counter,
                             activation=activation)
        else:
            z = ACTIVATIONS[activation](F.batch_norm(t[0], *running, t[1], t[2], True, 0.1,
                                                     num_batches_tracked=counter))
        z.backward(mt.Tensor(d.send(gz)))
        return [to_numpy(a) for a in (z.data, *(v.grad for v in t), *running, counter)]


@pytest.mark.parametrize("dev", DEVICES)
@pytest.mark.parametrize("activation", ["relu", "relu6"])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("shape", [(6, 4, 5, 5), (32, 3)])
def test_the_fused_function_is_batch_norm_then_the_activation(dev, activation, dtype, tol, shape):
    arrays = _arrays(dtype, shape)
    got, want = _run(dev, arrays, True, activation), _run(dev, arrays, False, activation)
    names = ("z", "dx", "dgamma", "dbeta", "running_mean", "running_var", "num_batches_tracked")
    for name, g, w in zip(names, got, want):
        assert g.dtype == w.dtype and g.shape == w.shape, name
        scale = max(float(np.abs(w).max()), 1.0)
        assert float(np.abs(g.astype(np.float64) - w).max()) <= tol * scale, name
    assert got[-1] == 1
    z = got[0]
    assert z.min() == 0 and (activation == "relu" or z.max() == 6), "the clamp's bounds are reached"


@pytest.mark.parametrize("activation", ["relu", "relu6"])
def test_the_fused_gradient_passes_gradcheck(activation):
    x, gamma, beta, _ = _arrays(np.float64, (4, 3, 3, 3), seed=3)
    report = mt.gradcheck(lambda *t: F.batch_norm(t[0], None, None, t[1], t[2], True, activation=activation),
                          [mt.Tensor(a, requires_grad=True) for a in (x, gamma, beta)])
    assert report.ok(1e-6), str(report)


def test_the_fused_function_keeps_no_mask_and_no_y():
    x, gamma, beta, _ = _arrays(np.float32)
    z = F.batch_norm(mt.Tensor(x, requires_grad=True), None, None, mt.Tensor(gamma), mt.Tensor(beta), True,
                     activation="relu6")
    fn = z.creator
    assert type(fn).__name__ == "BatchNormTrain" and fn.z is z.data   # the mask is read back from z itself
    held = [v for v in vars(fn).values() if isinstance(v, np.ndarray) and v.shape == x.shape]
    assert all(v is z.data or v is fn.x for v in held)


@pytest.mark.parametrize("activation", ["relu", "relu6"])
def test_eval_mode_applies_the_activation_after_the_affine_map(activation):
    x, gamma, beta, _ = _arrays(np.float64)
    mean, var = np.linspace(-1, 1, 4), np.linspace(0.5, 2, 4)
    got = F.batch_norm(x, mean, var, gamma, beta, activation=activation)
    want = ACTIVATIONS[activation](F.batch_norm(x, mean, var, gamma, beta))
    np.testing.assert_array_equal(got.data, want.data)


def test_an_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="batch_norm: activation must be None, 'relu' or 'relu6', got 'gelu'"):
        F.batch_norm(np.ones((2, 3)), None, None, training=True, activation="gelu")
