"""The CPU depthwise kernels (kernels/cpu/depthwise.py) against the reference kernels, in their own corners.

The kernels pad each plane into stride-split buffers and lay a stack of images one
after another, so besides strides, padding, dilation, rectangular kernels and
channel multipliers the cases here vary how many images share a buffer
(``STACK_ELEMENTS``), including a last stack with fewer images than the others.
float64 must agree with the reference to 1e-10 relative; float32 to 1e-5 of the
float64 result, also for the weight gradient's sum over a whole batch of 32x32 planes.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.numerics import rel_err

from minitorch_cnn.functional.checks import output_size
from minitorch_cnn.kernels import reference
from minitorch_cnn.kernels.cpu import depthwise, jit


def run_both(x, w, stride, padding, dilation, gy_seed=1, need_dx=True):
    """(ours, reference): each (y, dx, dw), for the same random output gradient."""
    out_hw = tuple(output_size(x.shape[2 + a], w.shape[2 + a], stride[a], padding[a], dilation[a], "test", x.shape)
                   for a in range(2))
    args = (stride, padding, dilation)
    y, ry = depthwise.depthwise_forward(x, w, *args, out_hw), reference.depthwise_forward(x, w, *args, out_hw)
    gy = np.random.default_rng(gy_seed).standard_normal(ry.shape).astype(x.dtype)
    dx, dw = depthwise.depthwise_backward(gy, x, w, *args, need_dx=need_dx)
    rdx, rdw = reference.depthwise_backward(gy, x, w, *args)
    return (y, dx, dw), (ry, rdx, rdw)


@st.composite
def depthwise_case(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    span = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    h = draw(st.integers(max(1, span[0] - 2 * padding[0]), 12))
    w = draw(st.integers(max(1, span[1] - 2 * padding[1]), 12))
    return dict(shape=(draw(st.integers(1, 5)), draw(st.integers(1, 4)), h, w), kernel=(kh, kw), stride=stride,
                padding=padding, dilation=dilation, m=draw(st.integers(1, 3)),
                stack_elements=draw(st.sampled_from([1, 40, 200, depthwise.STACK_ELEMENTS])))


@settings(max_examples=120, deadline=None)
@given(depthwise_case())
def test_depthwise_matches_reference_in_float64(cfg):
    rng = np.random.default_rng(0)
    c, m = cfg["shape"][1], cfg["m"]
    x = rng.standard_normal(cfg["shape"])
    w = rng.standard_normal((c * m, 1, *cfg["kernel"]))
    saved, depthwise.STACK_ELEMENTS = depthwise.STACK_ELEMENTS, cfg["stack_elements"]
    try:
        ours, ref = run_both(x, w, cfg["stride"], cfg["padding"], cfg["dilation"])
    finally:
        depthwise.STACK_ELEMENTS = saved
    for name, got, want in zip(("y", "dx", "dw"), ours, ref):
        assert got.shape == want.shape and got.dtype == np.float64, name
        assert rel_err(got, want) <= 1e-10, name


@pytest.mark.parametrize("stride", [1, 2])
def test_mobilenet_shapes_in_float32_against_float64(stride):
    # 32x32 planes, batch 64: dw sums 64 * 1024 (or 256) products per tap; above jit.PARALLEL_FROM (threads);
    # two stacks of images per channel, the last one short.
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((64, 8, 32, 32)), rng.standard_normal((8, 1, 3, 3))
    assert x.size * 9 >= jit.PARALLEL_FROM
    args = ((stride, stride), (1, 1), (1, 1))
    ours32, _ = run_both(x.astype(np.float32), w.astype(np.float32), *args)
    ours64, ref = run_both(x, w, *args)
    for name, got32, got64, want in zip(("y", "dx", "dw"), ours32, ours64, ref):
        assert got32.dtype == np.float32, name
        assert rel_err(got64, want) <= 1e-10, name
        assert rel_err(got32, got64) <= 1e-5, name


def test_weight_gradient_alone_and_channel_multiplier_on_threads():
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((9, 6, 17, 15)), rng.standard_normal((12, 1, 3, 2))
    (y, dx, dw), (ry, _, rdw) = run_both(x, w, (2, 1), (2, 1), (1, 2), need_dx=False)
    assert dx is None
    assert rel_err(y, ry) <= 1e-10 and rel_err(dw, rdw) <= 1e-10


def test_nan_input_reaches_the_outputs_whose_window_holds_it():
    # the weight gradient's dot product may reassociate, but must not assume values are finite
    x, w = np.ones((2, 1, 5, 5), np.float32), np.ones((1, 1, 3, 3), np.float32)
    x[1, 0, 0, 0] = np.nan
    (y, dx, dw), _ = run_both(x, w, (1, 1), (1, 1), (1, 1))
    nan_outputs = np.zeros(y.shape, bool)
    nan_outputs[1, 0, :2, :2] = True
    assert np.array_equal(np.isnan(y), nan_outputs)
    assert np.isnan(dw[0, 0, :2, :2]).all()   # the taps that reach it (others may be NaN too: see the kernel)
    assert np.isfinite(dx).all()
