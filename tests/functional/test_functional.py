"""Every function in ``minitorch_cnn.functional`` against finite differences and against PyTorch.

For each op: (1) gradcheck in float64, worst relative error <= 1e-6; (2) the same op in torch
on identical inputs, forward output and every input gradient, relative error <= 1e-10 in
float64 and <= 1e-5 in float32; (3) hypothesis-generated shapes and settings for the windowed
ops; (4) every bad input raises an error that names the layer and the shapes.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import numerics as helpers
from support.numerics import distinct, rel_err

import minitorch_cnn as mt
from minitorch_cnn import functional as F

TOL = {np.float64: 1e-10, np.float32: 1e-5}


def record(op, measure, value):
    helpers.record("functional", op.split(" ")[0], measure, value)


def compare_with_torch(ours, theirs, arrays, dtype, tol=None, grad_mask=None):
    """Run both on the same inputs and a same random upstream gradient; return the worst error."""
    arrays = [a.astype(dtype) for a in arrays]
    mine = [mt.Tensor(a.copy(), requires_grad=True) for a in arrays]
    ref = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    y, ty = ours(*mine), theirs(*ref)
    g = np.random.default_rng(1).standard_normal(ty.shape).astype(dtype)
    y.backward(g)
    ty.backward(torch.tensor(g))
    assert y.dtype == dtype, f"output dtype {y.dtype}, expected {dtype}"
    errors = [rel_err(y.data, ty.detach().numpy())]
    for m, r in zip(mine, ref):
        errors.append(rel_err(m.grad, r.grad.numpy()))
        assert m.grad.dtype == dtype
    worst = max(errors)
    assert worst <= (tol or TOL[dtype]), f"errors (output, grads...) = {errors}"
    return worst


def check_gradients(ours, arrays, tol=1e-6):
    tensors = [mt.Tensor(a.astype(np.float64), requires_grad=True) for a in arrays]
    report = mt.gradcheck(ours, tensors)
    assert report.ok(tol), str(report)
    return report.max_error


# ---- the ops, each as (ours, torch's, input builder) ------------------------------
def _conv_case(x_shape, w_shape, bias=True, **kw):
    def build(rng):
        arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape)]
        return arrays + ([rng.standard_normal(w_shape[0])] if bias else [])
    return (lambda *t: F.conv2d(*t, **kw)), (lambda *t: TF.conv2d(*t, **kw)), build


CASES = {
    "conv2d 3x3 pad 1": _conv_case((2, 3, 6, 6), (4, 3, 3, 3), padding=1),
    "conv2d 5x5 stride 2": _conv_case((2, 2, 9, 8), (3, 2, 5, 5), stride=2, padding=2),
    "conv2d 7x7 stride 3": _conv_case((1, 2, 11, 11), (2, 2, 7, 7), stride=3, padding=3),
    "conv2d 1x3 rect": _conv_case((2, 3, 5, 6), (4, 3, 1, 3), padding=(0, 1)),
    "conv2d 3x1 stride (2,1)": _conv_case((2, 3, 7, 5), (4, 3, 3, 1), stride=(2, 1), padding=(1, 0), bias=False),
    "conv2d 1x1": _conv_case((2, 4, 5, 5), (6, 4, 1, 1)),                                   # over the batch
    "conv2d 1x1 image by image": _conv_case((2, 3, 8, 8), (4, 3, 1, 1)),                     # 64 pixels an image
    "conv2d 3x3 image by image": _conv_case((1, 2, 23, 24), (2, 2, 3, 3), padding=1),         # 552 pixels: im2col
    "conv2d groups 2": _conv_case((2, 4, 6, 6), (6, 2, 3, 3), padding=1, groups=2),
    "conv2d depthwise": _conv_case((2, 4, 7, 7), (4, 1, 3, 3), padding=1, groups=4),
    "conv2d depthwise x2 stride 2": _conv_case((2, 3, 8, 7), (6, 1, 3, 3), stride=2, padding=1, groups=3),
    "conv2d dilation 2": _conv_case((1, 2, 9, 9), (3, 2, 3, 3), padding=2, dilation=2),
    "conv2d groups 2 dilation 2": _conv_case((2, 4, 8, 9), (6, 2, 3, 3), padding=1, dilation=2, groups=2),
    "conv2d depthwise dilation (2,3)": _conv_case((2, 3, 9, 10), (3, 1, 3, 2), stride=(1, 2), dilation=(2, 3),
                                                   groups=3),
    "max_pool2d 2": (lambda x: F.max_pool2d(x, 2), lambda x: TF.max_pool2d(x, 2),
                     lambda r: [distinct(r, (2, 3, 8, 8))]),
    "max_pool2d 3/2 pad 1": (lambda x: F.max_pool2d(x, 3, 2, 1), lambda x: TF.max_pool2d(x, 3, 2, 1),
                             lambda r: [distinct(r, (2, 3, 9, 8))]),
    "max_pool2d 3/1 pad 1": (lambda x: F.max_pool2d(x, 3, 1, 1), lambda x: TF.max_pool2d(x, 3, 1, 1),
                             lambda r: [distinct(r, (2, 2, 6, 6))]),
    "avg_pool2d 2": (lambda x: F.avg_pool2d(x, 2), lambda x: TF.avg_pool2d(x, 2),
                     lambda r: [r.standard_normal((2, 3, 8, 8))]),
    "avg_pool2d 5/3": (lambda x: F.avg_pool2d(x, 5, 3), lambda x: TF.avg_pool2d(x, 5, 3),
                       lambda r: [r.standard_normal((2, 2, 16, 16))]),
    "avg_pool2d 3/2 pad 1": (lambda x: F.avg_pool2d(x, 3, 2, 1), lambda x: TF.avg_pool2d(x, 3, 2, 1),
                             lambda r: [r.standard_normal((2, 2, 7, 8))]),
    "avg_pool2d pad excluded": (lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
                                lambda x: TF.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
                                lambda r: [r.standard_normal((2, 2, 7, 8))]),
    "adaptive_avg_pool2d 1": (lambda x: F.adaptive_avg_pool2d(x, 1), lambda x: TF.adaptive_avg_pool2d(x, 1),
                              lambda r: [r.standard_normal((2, 3, 5, 5))]),
    "adaptive_avg_pool2d (3,2)": (lambda x: F.adaptive_avg_pool2d(x, (3, 2)),
                                  lambda x: TF.adaptive_avg_pool2d(x, (3, 2)),
                                  lambda r: [r.standard_normal((2, 2, 7, 5))]),
    "adaptive_avg_pool2d 4 on 10": (lambda x: F.adaptive_avg_pool2d(x, 4), lambda x: TF.adaptive_avg_pool2d(x, 4),
                                    lambda r: [r.standard_normal((1, 2, 10, 10))]),
    "batch_norm train 4d": (
        lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True),
        lambda x, g, b: TF.batch_norm(x, None, None, g, b, training=True),
        lambda r: [r.standard_normal((3, 4, 5, 5)) * 2 + 1, r.standard_normal(4), r.standard_normal(4)]),
    "batch_norm train 2d": (
        lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True),
        lambda x, g, b: TF.batch_norm(x, None, None, g, b, training=True),
        lambda r: [r.standard_normal((6, 5)), r.standard_normal(5), r.standard_normal(5)]),
    "batch_norm eval": (
        lambda x, g, b: F.batch_norm(x, np.linspace(-1, 1, 3), np.linspace(0.5, 2, 3), g, b),
        lambda x, g, b: TF.batch_norm(x, torch.linspace(-1, 1, 3, dtype=x.dtype),
                                      torch.linspace(0.5, 2, 3, dtype=x.dtype), g, b),
        lambda r: [r.standard_normal((2, 3, 4, 4)), r.standard_normal(3), r.standard_normal(3)]),
    "relu": (F.relu, TF.relu, lambda r: [distinct(r, (3, 4, 5), 0.05)]),
    "relu6": (F.relu6, TF.relu6, lambda r: [distinct(r, (3, 4, 5), 0.7)]),
    "sigmoid": (F.sigmoid, torch.sigmoid, lambda r: [r.standard_normal((3, 7)) * 3]),
    "tanh": (F.tanh, torch.tanh, lambda r: [r.standard_normal((3, 7)) * 2]),
    "softmax dim 1": (lambda x: F.softmax(x, 1), lambda x: TF.softmax(x, 1),
                      lambda r: [r.standard_normal((4, 6)) * 3]),
    "softmax dim 0": (lambda x: F.softmax(x, 0), lambda x: TF.softmax(x, 0),
                      lambda r: [r.standard_normal((4, 3, 2))]),
    "log_softmax": (lambda x: F.log_softmax(x, -1), lambda x: TF.log_softmax(x, -1),
                    lambda r: [r.standard_normal((4, 6)) * 3]),
    "linear": (F.linear, TF.linear, lambda r: [r.standard_normal((4, 5)), r.standard_normal((3, 5)),
                                               r.standard_normal(3)]),
    "linear 3d input": (F.linear, TF.linear, lambda r: [r.standard_normal((2, 4, 5)), r.standard_normal((3, 5)),
                                                        r.standard_normal(3)]),
    "flatten": (lambda x: F.flatten(x, 1), lambda x: torch.flatten(x, 1), lambda r: [r.standard_normal((2, 3, 4))]),
    "cat dim 1": (lambda a, b, c: F.cat([a, b, c], 1), lambda a, b, c: torch.cat([a, b, c], 1),
                  lambda r: [r.standard_normal((2, 1, 3)), r.standard_normal((2, 4, 3)), r.standard_normal((2, 2, 3))]),
    "residual add": (lambda a, b: F.relu(a + b), lambda a, b: TF.relu(a + b),
                     lambda r: [distinct(r, (2, 3, 4, 4)), distinct(r, (2, 3, 4, 4)) * 0.1]),
    "cross_entropy": (lambda z: F.cross_entropy(z, np.array([0, 3, 2, 3])),
                      lambda z: TF.cross_entropy(z, torch.tensor([0, 3, 2, 3])),
                      lambda r: [r.standard_normal((4, 5)) * 2]),
    "cross_entropy smoothing": (lambda z: F.cross_entropy(z, np.array([0, 3, 2]), label_smoothing=0.1),
                                lambda z: TF.cross_entropy(z, torch.tensor([0, 3, 2]), label_smoothing=0.1),
                                lambda r: [r.standard_normal((3, 5)) * 2]),
    "cross_entropy sum": (lambda z: F.cross_entropy(z, np.array([1, 0]), reduction="sum"),
                          lambda z: TF.cross_entropy(z, torch.tensor([1, 0]), reduction="sum"),
                          lambda r: [r.standard_normal((2, 3))]),
    "cross_entropy none": (lambda z: F.cross_entropy(z, np.array([1, 0, 2]), reduction="none", label_smoothing=0.2),
                           lambda z: TF.cross_entropy(z, torch.tensor([1, 0, 2]), reduction="none",
                                                      label_smoothing=0.2),
                           lambda r: [r.standard_normal((3, 4))]),
}


@pytest.mark.parametrize("name", CASES)
def test_gradcheck(name):
    ours, _, build = CASES[name]
    record(name, "gradcheck float64", check_gradients(ours, build(np.random.default_rng(0))))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", CASES)
def test_matches_torch(name, dtype):
    ours, theirs, build = CASES[name]
    worst = compare_with_torch(ours, theirs, build(np.random.default_rng(0)), dtype)
    record(name, f"torch parity {np.dtype(dtype).name}", worst)


# ---- hypothesis: many shapes and settings -------------------------------------------
@st.composite
def conv_configs(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3, "depthwise"]))
    c = draw(st.integers(1, 8))
    if groups == "depthwise":
        groups, f = c, c * draw(st.integers(1, 2))
    else:
        c = max(groups, c - c % groups)
        f = groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    span = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    largest = draw(st.sampled_from([12, 12, 12, 40]))     # one draw in four may reach a larger image
    h = draw(st.integers(max(1, span[0] - 2 * ph), max(largest, span[0])))
    w = draw(st.integers(max(1, span[1] - 2 * pw), max(largest, span[1])))
    return dict(n=draw(st.integers(1, 4)), c=c, h=h, w=w, f=f, kernel=(kh, kw), groups=groups,
                stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))), padding=(ph, pw), dilation=dilation,
                bias=draw(st.booleans()))


def _conv_from(cfg):
    kw = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], groups=cfg["groups"])
    case = _conv_case((cfg["n"], cfg["c"], cfg["h"], cfg["w"]),
                      (cfg["f"], cfg["c"] // cfg["groups"], *cfg["kernel"]), bias=cfg["bias"], **kw)
    return case[0], case[1], case[2](np.random.default_rng(0))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_configs())
def test_conv2d_hypothesis_matches_torch(cfg):
    ours, theirs, arrays = _conv_from(cfg)
    record("conv2d", "torch parity float64", compare_with_torch(ours, theirs, arrays, np.float64))
    record("conv2d", "torch parity float32", compare_with_torch(ours, theirs, arrays, np.float32))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_configs())
def test_conv2d_hypothesis_gradcheck(cfg):
    cfg = dict(cfg, n=min(cfg["n"], 2), h=min(cfg["h"], 7), w=min(cfg["w"], 7))
    span = [d * (k - 1) + 1 for d, k in zip(cfg["dilation"], cfg["kernel"])]
    cfg["h"], cfg["w"] = max(cfg["h"], span[0]), max(cfg["w"], span[1])
    ours, _, arrays = _conv_from(cfg)
    record("conv2d", "gradcheck float64", check_gradients(ours, arrays))


@st.composite
def pool_configs(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h, w = draw(st.integers(max(1, kh - 2 * ph), 12)), draw(st.integers(max(1, kw - 2 * pw), 12))
    return dict(shape=(draw(st.integers(1, 4)), draw(st.integers(1, 8)), h, w), kernel=(kh, kw),
                stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))), padding=(ph, pw),
                include_pad=draw(st.booleans()))


@settings(max_examples=60, deadline=None)
@given(pool_configs())
def test_pooling_hypothesis_matches_torch(cfg):
    k, s, p = cfg["kernel"], cfg["stride"], cfg["padding"]
    x = distinct(np.random.default_rng(0), cfg["shape"])
    for dtype in (np.float64, np.float32):
        compare_with_torch(lambda t: F.max_pool2d(t, k, s, p), lambda t: TF.max_pool2d(t, k, s, p), [x], dtype)
        compare_with_torch(lambda t: F.avg_pool2d(t, k, s, p, count_include_pad=cfg["include_pad"]),
                           lambda t: TF.avg_pool2d(t, k, s, p, count_include_pad=cfg["include_pad"]), [x], dtype)
    out = (cfg["shape"][2] % 5 + 1, cfg["shape"][3] % 4 + 1)
    compare_with_torch(lambda t: F.adaptive_avg_pool2d(t, out), lambda t: TF.adaptive_avg_pool2d(t, out),
                       [x], np.float64)


@settings(max_examples=10, deadline=None)
@given(pool_configs())
def test_pooling_hypothesis_gradcheck(cfg):
    k, s, p = cfg["kernel"], cfg["stride"], cfg["padding"]
    n, c, h, w = cfg["shape"]
    x = distinct(np.random.default_rng(0), (min(n, 2), min(c, 3), h, w))
    check_gradients(lambda t: F.max_pool2d(t, k, s, p), [x])
    check_gradients(lambda t: F.avg_pool2d(t, k, s, p, count_include_pad=cfg["include_pad"]), [x])


# ---- behaviour beyond the formulas ------------------------------------------------------
def test_max_pool_ties_pick_the_first_maximum_like_torch():
    x = np.ones((1, 1, 4, 4))
    compare_with_torch(lambda t: F.max_pool2d(t, 2), lambda t: TF.max_pool2d(t, 2), [x], np.float64)
    compare_with_torch(lambda t: F.max_pool2d(t, 3, 1, 1), lambda t: TF.max_pool2d(t, 3, 1, 1), [x], np.float64)


def test_batch_norm_running_statistics_match_torch():
    rng = np.random.default_rng(0)
    mean, var = np.zeros(3), np.ones(3)
    tmean, tvar = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    for _ in range(4):
        x = rng.standard_normal((5, 3, 4, 4)) * 3 + 2
        F.batch_norm(x, mean, var, training=True, momentum=0.2)
        TF.batch_norm(torch.tensor(x), tmean, tvar, training=True, momentum=0.2)
    assert rel_err(mean, tmean.numpy()) < 1e-12 and rel_err(var, tvar.numpy()) < 1e-12


def test_softmax_is_stable_for_huge_logits():
    z = mt.Tensor(np.array([[1000.0, 0.0, -1000.0], [3e4, 3e4, 0.0]], np.float32))
    p = F.softmax(z, 1).data
    assert np.isfinite(p).all() and np.allclose(p.sum(1), 1)
    loss = F.cross_entropy(z, np.array([2, 0]))
    assert np.isfinite(loss.data) and abs(loss.item() - (2000 + np.log(2)) / 2) < 1e-2


def test_dropout_is_inverted_and_identity_in_eval():
    mt.manual_seed(0)
    x = mt.Tensor(np.ones((200, 200), np.float32), requires_grad=True)
    y = F.dropout(x, 0.3, training=True)
    kept = y.data != 0
    assert abs(kept.mean() - 0.7) < 0.01 and np.allclose(y.data[kept], 1 / 0.7)
    y.backward(np.ones_like(y.data))
    assert np.array_equal(x.grad, y.data)  # the same mask and scale reach the gradient
    assert F.dropout(x, 0.3, training=False) is x


def test_float32_stays_float32_through_a_network_step():
    rng = np.random.default_rng(0)
    x = mt.Tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32))
    w = mt.Tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    y = F.adaptive_avg_pool2d(F.max_pool2d(F.relu(F.conv2d(x, w, padding=1)), 2), 1).flatten(1)
    loss = F.cross_entropy(y * 0.5 + 1, np.array([1, 2]), label_smoothing=0.1)
    loss.backward()
    assert y.dtype == loss.dtype == w.grad.dtype == np.float32


# ---- bad input: clear errors that name the layer and the shapes -----------------------------
BAD = [
    (lambda: F.conv2d(np.zeros((8, 1, 32, 32)), np.zeros((64, 3, 3, 3))), ValueError, ["conv2d", "(8, 1, 32, 32)"]),
    (lambda: F.conv2d(np.zeros((1, 3, 2, 2)), np.zeros((4, 3, 5, 5))), ValueError, ["larger than the padded input"]),
    (lambda: F.conv2d(np.zeros((3, 32, 32)), np.zeros((4, 3, 3, 3))), ValueError, ["4-D", "(3, 32, 32)"]),
    (lambda: F.conv2d(np.zeros((1, 4, 8, 8)), np.zeros((6, 2, 3, 3)), groups=3), ValueError, ["groups=3"]),
    (lambda: F.conv2d(np.zeros((1, 3, 8, 8)), np.zeros((4, 3, 3, 3)), np.zeros(5)), ValueError, ["bias", "(5,)"]),
    (lambda: F.conv2d(np.zeros((1, 3, 8, 8)), np.zeros((4, 3, 3, 3)), stride=0), ValueError, ["stride"]),
    (lambda: F.conv2d(np.zeros((1, 3, 8, 8)), np.zeros((4, 3, 3, 3)), padding=1.5), TypeError, ["padding"]),
    (lambda: F.max_pool2d(np.zeros((2, 3, 8)), 2), ValueError, ["max_pool2d", "4-D", "(2, 3, 8)"]),
    (lambda: F.max_pool2d(np.zeros((1, 1, 2, 2)), 3), ValueError, ["max_pool2d", "larger than the padded"]),
    (lambda: F.max_pool2d(np.zeros((1, 1, 8, 8)), 2, 2, 2), ValueError, ["padding", "half"]),
    (lambda: F.avg_pool2d(np.zeros((1, 1, 8)), 2), ValueError, ["avg_pool2d", "(1, 1, 8)"]),
    (lambda: F.adaptive_avg_pool2d(np.zeros((1, 8, 8)), 1), ValueError, ["adaptive_avg_pool2d"]),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.array([0, 3])), ValueError, ["[0, 2]", "max 3"]),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.array([-1, 0])), ValueError, ["min -1"]),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2])), ValueError, ["(2,)", "(3,)"]),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0])), TypeError, ["integer"]),
    (lambda: F.cat([np.zeros((2, 3)), np.zeros((3, 3))], 1), ValueError, ["cat", "(3, 3)", "(2, 3)"]),
    (lambda: F.cat([np.zeros((2, 3)), np.zeros((2, 3))], 2), ValueError, ["cat", "dim 2"]),
    (lambda: F.linear(np.zeros((2, 4)), np.zeros((3, 5))), ValueError, ["linear", "(2, 4)", "(*, 5)"]),
    (lambda: F.batch_norm(np.zeros((2, 3, 4, 4)), np.zeros(4), np.ones(4)), ValueError, ["running_mean", "(4,)"]),
    (lambda: F.batch_norm(np.zeros((1, 3, 1, 1)), None, None, training=True), ValueError, ["more than 1 value"]),
    (lambda: F.dropout(np.zeros(3), 1.5), ValueError, ["dropout", "1.5"]),
    (lambda: F.softmax(np.zeros((2, 3)), 2), ValueError, ["softmax", "dim 2"]),
]


@pytest.mark.parametrize("call, error, fragments", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input_raises_a_clear_error(call, error, fragments):
    helpers.raises_naming(error, call, *fragments)


def test_dropout_gradcheck_with_a_fixed_mask():
    def fn(x):
        mt.manual_seed(3)  # the same mask at every evaluation, so finite differences see a fixed function
        return F.dropout(x, 0.4, training=True)
    x = np.random.default_rng(0).standard_normal((3, 4, 5))
    record("dropout", "gradcheck float64", check_gradients(fn, [x]))
