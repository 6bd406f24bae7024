"""Batch norm and ReLU / ReLU6: the backward from what the graph already holds, against PyTorch and the
reference kernels, and what each Function keeps alive between its forward and backward.

BatchNormTrain keeps its input x (not an x_hat of its own) and recomputes x_hat in the backward kernel;
ReLU and ReLU6 keep their output (not a mask) and read the mask back from it.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minitorch_cnn as mt
from minitorch_cnn import functional as F
from minitorch_cnn import nn
from minitorch_cnn.functional.activation import ReLU, ReLU6
from minitorch_cnn.functional.norm import BatchNormEval, BatchNormTrain
from minitorch_cnn.gradcheck import gradcheck
from minitorch_cnn.kernels import cpu, reference


def _edge_values(dtype):
    """Every value where a clamp's derivative changes, and the special ones: 0, 6, just either side, +-inf."""
    e = np.finfo(dtype).eps
    return np.array([-np.inf, -1.0, -e, 0.0, e, 1.0, 6.0 - 4 * e, 6.0, 6.0 + 8 * e, 7.0, np.inf], dtype)


@pytest.mark.parametrize("name", ["relu", "relu6"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clamp_gradient_at_the_kinks_matches_torch(name, dtype):
    # PyTorch: relu passes no gradient at x = 0 (threshold_backward on the output); relu6 (hardtanh)
    # none at x = 0 nor at x = 6.
    x = _edge_values(dtype)
    gy = np.arange(1, x.size + 1, dtype=dtype)
    ours = mt.Tensor(x.copy(), requires_grad=True)
    getattr(F, name)(ours).backward(gy)
    theirs = torch.tensor(x.copy(), requires_grad=True)
    getattr(TF, name)(theirs).backward(torch.tensor(gy))
    np.testing.assert_array_equal(ours.grad, theirs.grad.numpy())


@pytest.mark.parametrize("shape", [(5, 7), (64, 32, 8, 8)])   # serial and threaded kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clamp_backward_kernel_matches_reference(shape, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    x.reshape(-1)[:12] = np.append(_edge_values(dtype), np.nan)
    gy = rng.standard_normal(shape).astype(dtype)
    gy.reshape(-1)[20] = np.nan     # a NaN gradient passes where the gradient is 1, like PyTorch's select
    for high in (None, 6.0):
        y, _ = cpu.clamp_forward(x, high)
        got, want = cpu.clamp_backward(gy, y, high), reference.clamp_backward(gy, y, high)
        assert got.dtype == dtype and got.shape == shape
        np.testing.assert_array_equal(got, want)
        # the reference reads the same mask from y as the forward's own mask from x
        _, mask = reference.clamp_forward(x, high)
        np.testing.assert_array_equal(np.isnan(want), np.isnan(gy) & mask)
        np.testing.assert_array_equal(np.nan_to_num(want), np.nan_to_num(gy) * mask)


def _channel_data(rng, shape, dtype, offset=1.0, scale=3.0):
    return (rng.standard_normal(shape) * scale + offset).astype(dtype)


@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 7), (4, 3, 5, 5), (16, 8, 24, 24)])
@pytest.mark.parametrize("offset", [1.0, 1e3])    # a mean far from 0: x_hat recomputed from x must stay exact
def test_batch_norm_kernels_match_reference_in_float64(shape, offset):
    rng = np.random.default_rng(1)
    x = _channel_data(rng, shape, np.float64, offset)
    gamma, beta, gy = rng.standard_normal(shape[1]), rng.standard_normal(shape[1]), rng.standard_normal(shape)
    got, want = cpu.batch_norm_forward(x, gamma, beta, 1e-5), reference.batch_norm_forward(x, gamma, beta, 1e-5)
    for part, a, b in zip(("y", "mean", "var", "inv_std"), got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * np.abs(b).max(), err_msg=part)
    back = cpu.batch_norm_backward(gy, x, gamma, got[1], got[3])
    ref = reference.batch_norm_backward(gy, x, gamma, want[1], want[3])
    for part, a, b in zip(("dx", "dgamma", "dbeta"), back, ref):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * np.abs(b).max(), err_msg=part)


def test_batch_norm_float32_kernels_stay_close_to_float64():
    rng = np.random.default_rng(2)
    x = _channel_data(rng, (32, 16, 12, 12), np.float64, offset=50.0)
    gamma, beta, gy = rng.standard_normal(16), rng.standard_normal(16), rng.standard_normal(x.shape)
    f32 = [a.astype(np.float32) for a in (x, gamma, beta, gy)]
    exact = reference.batch_norm_forward(x, gamma, beta, 1e-5)
    got = cpu.batch_norm_forward(*f32[:3], 1e-5)
    assert got[0].dtype == np.float32
    for part, a, b in zip(("y", "mean", "var", "inv_std"), got, exact):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max(), err_msg=part)
    exact_back = reference.batch_norm_backward(gy, x, gamma, exact[1], exact[3])
    back = cpu.batch_norm_backward(f32[3], f32[0], f32[1], got[1], got[3])
    for part, a, b in zip(("dx", "dgamma", "dbeta"), back, exact_back):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max(), err_msg=part)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck_and_torch(training):
    rng = np.random.default_rng(3)
    x = _channel_data(rng, (4, 3, 5, 5), np.float64, offset=2.0)
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    params = [mt.Tensor(gamma.copy(), requires_grad=True), mt.Tensor(beta.copy(), requires_grad=True)]

    def ours(t):
        return F.batch_norm(t, mean.copy(), var.copy(), *params, training=training)
    report = gradcheck(ours, [mt.Tensor(x.copy(), requires_grad=True)], params)
    assert report.ok(1e-6), report
    gy = rng.standard_normal(x.shape)
    xs = mt.Tensor(x.copy(), requires_grad=True)
    for p in params:
        p.grad = None
    ours(xs).backward(gy)
    tx, tg, tb = (torch.tensor(a.copy(), requires_grad=True) for a in (x, gamma, beta))
    TF.batch_norm(tx, torch.tensor(mean), torch.tensor(var), tg, tb, training=training).backward(torch.tensor(gy))
    for a, b in zip((xs.grad, params[0].grad, params[1].grad), (tx.grad, tg.grad, tb.grad)):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-10, atol=1e-10)


# ---- what stays alive between forward and backward ---------------------------------------------------

def _saved_arrays(fn):
    return {name: v for name, v in vars(fn).items() if isinstance(v, np.ndarray)}


@pytest.mark.parametrize("function", [lambda: BatchNormTrain(1e-5, []),
                                      lambda: BatchNormEval(np.zeros(4), np.ones(4), 1e-5)])
def test_batch_norm_saves_no_activation_sized_array_but_its_input(function):
    x = mt.Tensor(np.random.default_rng(4).standard_normal((8, 4, 6, 6)), requires_grad=True)
    fn = function()
    fn(x, mt.Tensor(np.ones(4), requires_grad=True), mt.Tensor(np.zeros(4), requires_grad=True))
    big = {name: a for name, a in _saved_arrays(fn).items() if a.size > 4}
    assert list(big) == ["x"] and big["x"] is x.data, {n: a.shape for n, a in big.items()}


@pytest.mark.parametrize("function", [ReLU, ReLU6])
def test_clamps_save_their_output_and_no_mask(function):
    x = mt.Tensor(np.random.default_rng(5).standard_normal((8, 4, 6, 6)) * 4, requires_grad=True)
    fn = function()
    y = fn(x)
    saved = _saved_arrays(fn)
    assert list(saved) == ["y"] and saved["y"] is y.data, {n: (a.shape, a.dtype) for n, a in saved.items()}


def _owner(a):
    return a if a.base is None else _owner(a.base)


def test_conv_bn_relu_graph_holds_no_array_beside_its_tensors():
    # Through a whole conv-bn-relu net: every activation-sized array a Function saves is (a view of) one of
    # the graph's own tensors, an input or output of some op, which the graph holds anyway.
    mt.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8), nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x = mt.Tensor(np.random.default_rng(6).standard_normal((4, 3, 10, 10)).astype(np.float32))
    out = net(x)
    tensors, saved, stack = {id(_owner(out.data))}, [], [out.creator]
    while stack:
        fn = stack.pop()
        saved += [(f"{type(fn).__name__}.{name}", a) for name, a in _saved_arrays(fn).items()]
        for t in fn.inputs:
            tensors.add(id(_owner(t.data)))
            if t.creator is not None:
                stack.append(t.creator)
    assert {name.split(".")[0] for name, _ in saved} >= {"BatchNormTrain", "ReLU", "ReLU6"}
    smallest_activation = 4 * 8 * 10 * 10
    extra = [(name, a.shape) for name, a in saved if a.size >= smallest_activation and id(_owner(a)) not in tensors]
    # The one deliberate exception: an im2col layer's column matrix, kept within workspace.keep's shared budget
    # (tests/engine/test_overhead.py pins that budget); everything else must be a graph tensor.
    assert [name for name, _ in extra] == ["Conv2d.kept_cols"], extra

