"""ConvPlan: the one answer to "which algorithm, what shape, what scratch" for a convolution.

Each algorithm's plan is checked against what conv2d really does: the Function that ran, the output
shape, and the workspace buffers the kernels borrow (im2col's columns, Winograd's V/M tiles and dW columns,
recorded by wrapping ``workspace.borrow`` and ``workspace.keep``).
"""
import math
import re

import numpy as np
import pytest

import minitorch_cnn as mt
from minitorch_cnn import functional as F
from minitorch_cnn import workspace
from minitorch_cnn.functional import conv
from minitorch_cnn.functional.conv import ConvPlan, plan_conv
from minitorch_cnn.kernels import cpu
from minitorch_cnn.kernels.cpu import winograd

# x shape, weight shape, stride, padding, dilation, groups -> the algorithm the plan must choose
CASES = [((2, 3, 9, 8), (4, 3, 3, 3), 2, 1, 1, 1, "im2col"),
         ((2, 4, 9, 9), (6, 2, 3, 3), 1, 1, 2, 2, "im2col"),            # groups 2, dilated
         ((2, 3, 24, 24), (12, 3, 3, 3), 1, 1, 1, 1, "im2col"),         # 576 pixels an image: image by image
         ((2, 16, 8, 8), (8, 16, 1, 1), 1, 0, 1, 1, "pointwise"),
         ((2, 16, 3, 3), (8, 16, 1, 1), 1, 0, 1, 1, "pointwise"),       # 9 pixels an image: over the batch
         ((2, 8, 9, 9), (16, 1, 3, 3), 2, 1, 1, 8, "depthwise"),        # channel multiplier 2
         ((2, 16, 9, 8), (8, 16, 3, 3), 1, 1, 1, 1, "winograd"),        # 72 pixels an image: Winograd from 64
         ((8, 64, 17, 16), (32, 64, 3, 3), 1, 2, 1, 1, "winograd"),     # large enough to run threaded
         ((32, 3, 32, 30), (4, 3, 3, 2), 1, (2, 1), 1, 1, "direct"),    # few filters: no workspace at all
         ((16, 3, 32, 32), (6, 3, 5, 5), 1, 0, 2, 1, "direct")]


def _record_scratch(monkeypatch):
    """[(name, shape)] of every workspace borrow and ("kept", shape) of every kept array, as they happen."""
    seen = []
    borrow, keep = workspace.borrow, workspace.keep
    monkeypatch.setattr(workspace, "borrow", lambda name, shape, *a: seen.append((name, tuple(shape)))
                        or borrow(name, shape, *a))

    def keeping(shape, *a):
        kept = keep(shape, *a)
        if kept is not None:
            seen.append(("kept", tuple(shape)))
        return kept
    monkeypatch.setattr(workspace, "keep", keeping)
    return seen


def _run(case, rng, grad=True):
    x_shape, w_shape, stride, padding, dilation, groups, _ = case
    x = mt.Tensor(rng.standard_normal(x_shape).astype(np.float32), requires_grad=grad)
    w = mt.Tensor(rng.standard_normal(w_shape).astype(np.float32), requires_grad=grad)
    return x, w, F.conv2d(x, w, None, stride, padding, dilation, groups)


def _largest_per_name(seen):
    """The largest shape each workspace name was asked for (its buffer's size after the call)."""
    out = {}
    for name, shape in seen:
        if math.prod(shape) > math.prod(out.get(name, (0,))):
            out[name] = shape
    return out


@pytest.mark.parametrize("case", CASES, ids=[c[-1] + str(i) for i, c in enumerate(CASES)])
def test_the_plan_names_the_algorithm_conv2d_runs_and_its_output_shape(case):
    x_shape, w_shape, stride, padding, dilation, groups, algorithm = case
    plan = plan_conv(x_shape, w_shape, stride, padding, dilation, groups, np.float32)
    assert isinstance(plan, ConvPlan) and plan.algorithm == algorithm
    _, _, y = _run(case, np.random.default_rng(0))
    assert type(y.creator).algorithm == plan.algorithm and tuple(y.shape) == plan.out_shape
    assert plan.out_hw == plan.out_shape[2:]


@pytest.mark.parametrize("case", CASES, ids=[c[-1] + str(i) for i, c in enumerate(CASES)])
def test_the_plan_workspace_bytes_are_what_the_kernels_borrow(case, monkeypatch):
    monkeypatch.setattr(workspace, "KEEP_BYTES", 0)      # so im2col's columns go to the workspace too
    plan = plan_conv(*case[:6], np.float32)
    assert not plan.may_keep_columns or plan.algorithm != "im2col"
    seen = _record_scratch(monkeypatch)
    x, w, y = _run(case, np.random.default_rng(1))
    forward, seen[:] = _largest_per_name(seen), []
    y.backward(np.ones_like(y.data))
    backward = _largest_per_name(seen)

    def planned(scratch):    # the workspace arrays of the plan, one per worker thread, as sorted shapes
        return sorted(s.shape for s in scratch if s.where == "workspace" for _ in range(s.count))
    if plan.algorithm == "im2col":
        groups, filters = case[5], case[1][0]    # the whole batch's product unless it runs image by image
        product = {} if plan.per_image else {"conv output": (groups, filters // groups, plan.cols_shape[1])}
        assert forward == {"im2col": plan.cols_shape, **product}
        assert math.prod(backward["im2col"]) == math.prod(plan.cols_shape)   # rebuilt columns, then dcols
        assert planned(plan.forward_scratch) == sorted([plan.cols_shape, *product.values()])
        assert planned(plan.backward_scratch) == [plan.cols_shape]
    else:
        assert sorted(forward.values()) == planned(plan.forward_scratch)
        assert sorted(backward.values()) == planned(plan.backward_scratch)
    if plan.algorithm == "depthwise" or plan.algorithm == "pointwise" and plan.per_image:
        assert forward == backward == {} and plan.forward_bytes == 0
    if plan.algorithm == "pointwise" and not plan.per_image:
        n, c, h, w = case[0]
        assert forward == {"pointwise input": (c, n * h * w), "conv output": (case[1][0], n * h * w)}
    if plan.algorithm == "winograd":
        workers = {name for name in forward if re.fullmatch(r"winograd\d*_v", name)}   # V: one per worker thread
        assert (len(workers) > 1) == (case[0][0] == 8), "the large case runs threaded, the small one serially"


def test_im2col_plan_says_whether_its_columns_may_be_kept(monkeypatch):
    case = CASES[0]
    plan = plan_conv(*case[:6], np.float32)
    cols_bytes = math.prod(plan.cols_shape) * 4
    product = (1, case[1][0], plan.cols_shape[1])   # the whole batch's W @ cols, before its NCHW copy
    assert plan.backward_bytes == cols_bytes and plan.forward_bytes == cols_bytes + math.prod(product) * 4
    assert plan.may_keep_columns and plan.forward_scratch[0].where == "kept"
    seen = _record_scratch(monkeypatch)
    _run(case, np.random.default_rng(2))
    assert seen == [("kept", plan.cols_shape), ("conv output", product)]
    monkeypatch.setattr(workspace, "KEEP_BYTES", cols_bytes - 1)
    over = plan_conv(*case[:6], np.float32)
    assert not over.may_keep_columns and over.forward_scratch[0].where == "workspace"


def test_bytes_formulas(monkeypatch):
    monkeypatch.setattr(cpu, "winograd_from_pixels", {})  # the 6x5 map below runs F(4x4) all the same
    n, c, f, h, w = 4, 16, 8, 6, 5
    plan = plan_conv((n, c, 8, 8), (f, c, 1, 1), dtype=np.float64)    # 64 pixels an image: image by image
    assert plan.forward_bytes == 0 and plan.backward_bytes == (f + c) * n * 64 * 8   # dW's two copies
    assert plan.gemm == ((f, c), (n, c, 64)) and plan.per_image
    small = plan_conv((n, c, h, w), (f, c, 1, 1), dtype=np.float64)   # 30 pixels an image: over the batch
    assert not small.per_image and small.forward_bytes == (c + f) * n * h * w * 8
    assert small.backward_bytes == (f + 2 * c) * n * h * w * 8             # and dx's channel-first product
    plan = plan_conv((n, c, h, w), (c, 1, 3, 3), padding=1, groups=c)
    assert plan.algorithm == "depthwise" and plan.forward_bytes == plan.backward_bytes == 0 and plan.gemm is None
    plan = plan_conv((n, c, h, w), (f, c, 3, 3), padding=1)
    tiles = n * 2 * 2                         # 4x4 output tiles over the 6x5 map: 2 by 2 of them
    assert plan.algorithm == "winograd" and plan.gemm == ((36, f, c), (36, c, tiles))
    u, v, m = plan.forward_scratch            # small: one chunk, one thread
    assert (u.shape, v.shape, m.shape) == ((36, f, c), (36, c, tiles), (36, f, tiles))
    assert plan.forward_bytes == 36 * (f * c + (c + f) * tiles) * 4
    plan = plan_conv((n, c, h, w), (f, c, 3, 3), stride=2, padding=1)
    assert plan.algorithm == "im2col" and plan.gemm == ((1, f, c * 9), (1, c * 9, n * 3 * 3))


def test_winograd_plan_follows_the_kernels_chunking(monkeypatch):
    monkeypatch.setattr(winograd, "CHUNK_BYTES", 1)     # every row of tiles its own chunk
    monkeypatch.setattr(winograd, "MIN_TILES", 1)
    plan = plan_conv((2, 16, 8, 8), (16, 16, 3, 3), padding=1)
    assert {s.shape for s in plan.forward_scratch[1:]} == {(36, 16, 2)}   # one row of 2 tiles


def test_the_device_decides_whether_winograd_is_offered():
    shape = ((2, 16, 8, 8), (16, 16, 3, 3), 1, 1)
    assert plan_conv(*shape).algorithm == "winograd"                     # the default device: the CPU
    assert plan_conv(*shape, device="cpu").algorithm == "winograd"
    assert plan_conv(*shape, device=mt.device("cpu")).algorithm == "winograd"
    assert plan_conv(*shape, device="cuda-emulator").algorithm == "im2col"   # the CUDA kernels offer im2col only
    with mt.using_device("cuda-emulator"):
        assert plan_conv(*shape).algorithm == "im2col"


@pytest.mark.parametrize("kwargs,message", [
    (dict(x_shape=(2, 3, 8), weight_shape=(4, 3, 3, 3)), "expected a 4-D input"),
    (dict(x_shape=(2, 3, 8, 8), weight_shape=(4, 2, 3, 3)), r"expects input \(N, 2, H, W\)"),
    (dict(x_shape=(2, 4, 8, 8), weight_shape=(3, 2, 3, 3), groups=2), "groups=2 must divide"),
    (dict(x_shape=(2, 3, 2, 2), weight_shape=(4, 3, 3, 3)), "larger than the padded input"),
    (dict(x_shape=(2, 3, 8, 8), weight_shape=(4, 3, 3, 3), stride=0), "stride must be >= 1"),
    (dict(x_shape=(2, 3, 8, 8), weight_shape=(4, 3, 3, 3), padding=-1), "padding must be >= 0")])
def test_plan_conv_raises_what_conv2d_raises(kwargs, message):
    with pytest.raises(ValueError, match=message) as planned:
        plan_conv(**kwargs)
    x = np.zeros(kwargs.pop("x_shape"), np.float32)
    w = np.zeros(kwargs.pop("weight_shape"), np.float32)
    with pytest.raises(ValueError) as ran:
        F.conv2d(x, w, **kwargs)
    assert str(ran.value) == str(planned.value)


def test_conv2d_computes_no_scratch_list():
    # the hot path builds the plan but never asks for its bytes (cached_property, computed on first use)
    x, w = np.zeros((1, 16, 6, 6), np.float32), np.zeros((4, 16, 3, 3), np.float32)
    plans = []
    original = conv.plan_conv
    try:
        conv.plan_conv = lambda *a, **k: plans.append(original(*a, **k)) or plans[-1]
        F.conv2d(x, w, padding=1)
    finally:
        conv.plan_conv = original
    assert len(plans) == 1 and "forward_scratch" not in vars(plans[0])


@pytest.mark.parametrize("dtype", [np.int64, np.float16])
def test_conv2d_refuses_dtypes_it_has_no_kernel_for(dtype):
    """An int or float16 input is one clear error naming conv2d, not a Numba typing error deep in a kernel."""
    x = mt.Tensor(np.zeros((1, 2, 5, 5), dtype))
    with pytest.raises(TypeError, match=rf"conv2d: expected a float32 or float64 input, got {np.dtype(dtype)}"):
        F.conv2d(x, mt.Tensor(np.zeros((3, 2, 3, 3), np.float32)))
