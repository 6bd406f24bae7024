"""The direct convolution (kernels/cpu/direct.py, functional/conv_sliding.DirectConv2d) against the reference.

The kernel computes each output plane wide (rows of the padded input's width) and runs up to 5 taps of a
kernel row per pass (the weight gradient up to 3), the forward for a block of 4 filters at once (zero filters
fill the last block) and dx for up to 4 filters' dY planes at once: the cases vary kernel widths 1 to 7 so
that every mix of 5-, 3- and 1-tap passes runs, and filter counts 1 to 9 so that every filled and partly
filled block does, with padding, dilation and rectangular kernels, and the plan's choice of the
path (few filters, stride 1, groups 1, on the CPU only).
"""
import numpy as np
import pytest
from support.numerics import rel_err

import minitorch_cnn as mt
from minitorch_cnn import functional as F
from minitorch_cnn.functional import conv
from minitorch_cnn.functional.checks import output_size
from minitorch_cnn.functional.conv import DIRECT_MAX_FILTERS, DIRECT_MIN_COLUMNS, plan_conv
from minitorch_cnn.kernels import reference
from minitorch_cnn.kernels.cpu import direct, jit

# x shape, w shape, padding, dilation
CASES = [((2, 3, 12, 12), (6, 3, 5, 5), (0, 0), (1, 1)),      # LeNet-5's first layer, smaller
         ((3, 2, 9, 8), (4, 2, 3, 2), (2, 1), (1, 1)),
         ((2, 3, 11, 13), (5, 3, 2, 7), (1, 3), (2, 1)),      # 7 taps a row: a 5-tap pass, then two single
         ((1, 1, 6, 9), (2, 1, 1, 4), (0, 0), (1, 2)),        # 4 taps: 3 + 1
         ((2, 4, 7, 10), (3, 4, 4, 6), (1, 0), (1, 1)),       # 6 taps: 5 + 1
         ((1, 2, 5, 5), (1, 2, 5, 5), (2, 2), (1, 1)),        # padding: output as large as the input
         ((2, 3, 9, 11), (9, 3, 3, 5), (1, 2), (1, 1)),       # 9 filters: blocks of 4, 4 and 1 (+ 3 zero)
         ((2, 6, 14, 14), (16, 6, 5, 5), (0, 0), (1, 1))]     # LeNet-5's second layer, smaller


def _both(x, w, b, padding, dilation, need_dx=True):
    out_hw = tuple(output_size(x.shape[2 + a], w.shape[2 + a], 1, padding[a], dilation[a], "test", x.shape)
                   for a in range(2))
    y, ry = direct.direct_conv(x, w, b, padding, dilation, out_hw), reference.direct_conv(x, w, b, padding,
                                                                                           dilation, out_hw)
    gy = np.random.default_rng(3).standard_normal(ry.shape).astype(x.dtype)
    dx, dw = direct.direct_conv_backward(gy, x, w, padding, dilation, need_dx=need_dx)
    rdx, rdw = reference.direct_conv_backward(gy, x, w, padding, dilation)
    return (y, dx, dw), (ry, rdx, rdw)


@pytest.mark.parametrize("case", CASES)
def test_direct_matches_reference_in_float64(case):
    x_shape, w_shape, padding, dilation = case
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    for got, want in zip(*_both(x, w, b, padding, dilation)):
        assert got.shape == want.shape and got.dtype == np.float64
        assert rel_err(got, want) < 1e-12
    (_, dx, dw), (_, _, rdw) = _both(x, w, None, padding, dilation, need_dx=False)
    assert dx is None and rel_err(dw, rdw) < 1e-12


def _float32_near_float64(x, w, b):
    """The direct kernels in float32 against the reference in float64: output, dx, dW within 1e-5."""
    f32 = _both(*(a.astype(np.float32) for a in (x, w, b)), (0, 0), (1, 1))[0]
    _, f64 = _both(x, w, b, (0, 0), (1, 1))
    for got, want in zip(f32, f64):
        assert got.dtype == np.float32 and rel_err(got, want) < 1e-5


def test_lenet_first_layer_in_float32_against_float64():
    # a whole batch of 32x32 planes: the weight gradient sums 64 * 892 products per tap, split over vector lanes
    rng = np.random.default_rng(1)
    _float32_near_float64(rng.standard_normal((64, 3, 32, 32)), rng.standard_normal((6, 3, 5, 5)),
                          rng.standard_normal(6))


@pytest.mark.parametrize("threaded", [False, True])
def test_lenet_second_layer_in_float32_against_float64_threaded_and_serial(threaded, monkeypatch):
    # 16 filters: four full blocks in the forward and in dx; both copies of each kernel (tests/conftest.py)
    monkeypatch.setattr(jit, "PARALLEL_FROM", 0 if threaded else 1 << 62)
    rng = np.random.default_rng(4)
    _float32_near_float64(rng.standard_normal((64, 6, 14, 14)), rng.standard_normal((16, 6, 5, 5)),
                          rng.standard_normal(16))


@pytest.mark.parametrize("case", CASES[:3])
def test_direct_path_passes_gradcheck(case, monkeypatch):
    monkeypatch.setattr(conv, "DIRECT_MIN_COLUMNS", 0)   # these small column matrices would choose im2col
    x_shape, w_shape, padding, dilation = case
    rng = np.random.default_rng(2)
    tensors = [mt.Tensor(rng.standard_normal(s), requires_grad=True) for s in (x_shape, w_shape, w_shape[:1])]
    y = F.conv2d(*tensors, padding=padding, dilation=dilation)
    assert type(y.creator).algorithm == "direct"
    report = mt.gradcheck(lambda *t: F.conv2d(*t, padding=padding, dilation=dilation), tensors)
    assert report.ok(1e-6), str(report)


def test_the_plan_chooses_direct_for_few_filters_at_stride_1_on_the_cpu_only():
    lenet = ((64, 3, 32, 32), (6, 3, 5, 5))
    assert plan_conv(*lenet).algorithm == "direct"
    assert plan_conv(*lenet, device="cuda-emulator").algorithm == "im2col"   # the CUDA kernels offer im2col only
    assert plan_conv((64, 6, 14, 14), (16, 6, 5, 5)).algorithm == "direct"       # LeNet-5's second layer
    assert plan_conv((64, 6, 14, 14), (DIRECT_MAX_FILTERS + 1, 6, 5, 5)).algorithm == "im2col"
    assert plan_conv(*lenet, stride=2).algorithm == "im2col"
    assert plan_conv((64, 4, 32, 32), (6, 2, 5, 5), groups=2).algorithm == "im2col"
    assert plan_conv((2, 16, 8, 8), (8, 16, 3, 3), padding=1).algorithm == "winograd"   # Winograd first
    assert plan_conv(*lenet).gemm is None
    # below DIRECT_MIN_COLUMNS column-matrix elements (a lab's few small images) im2col stays
    assert plan_conv((4, 3, 32, 32), (6, 3, 5, 5)).algorithm == "im2col"
    assert 4 * 75 * 28 * 28 < DIRECT_MIN_COLUMNS <= 16 * 75 * 28 * 28
    assert plan_conv((16, 3, 32, 32), (6, 3, 5, 5)).algorithm == "direct"


def test_the_plan_lists_the_arrays_the_kernels_allocate(monkeypatch):
    monkeypatch.setattr(conv, "DIRECT_MIN_COLUMNS", 0)
    plan = plan_conv((2, 3, 9, 8), (4, 3, 3, 2), padding=(2, 1), dtype=np.float64)
    hp, wp, ho = 13, 10, 11
    assert plan.algorithm == "direct" and [s.shape for s in plan.forward_scratch] == [(2, 3, hp * wp)]
    assert [s.shape for s in plan.backward_scratch] == [(2, 4, ho * wp), (2, 3, hp * wp), (2, 3, hp * wp)]
    assert plan.backward_bytes == (2 * 4 * ho * wp + 2 * 2 * 3 * hp * wp) * 8
    unpadded = plan_conv((2, 3, 9, 8), (4, 3, 3, 2))
    assert unpadded.forward_bytes == 0 and [s.shape for s in unpadded.backward_scratch] == [(2, 4, 7 * 8)]
