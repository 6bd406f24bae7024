"""The depthwise kernels' paths that tests/functional/test_depthwise.py reaches only by chance, each against
the reference kernels in float64 (1e-10 relative):

* the work split: units (one channel of a stack of images) and channel ranges cut into ``_chunks`` pieces
  that do not divide them evenly, each piece reusing its buffers from one unit to the next;
* the stride-1 dx gather (the forward's loop with reflected taps), with a channel multiplier m > 1 (the
  filters' dx added through a second buffer) and with dilation, beside the scatter of other strides;
* a NaN or infinity in gy, which must reach exactly the input pixels its window covers, and no others
  (the gather reads the zeros around gy's grid where no output is).
"""
import numpy as np
import pytest
from support.numerics import rel_err

from minitorch_cnn.functional.checks import output_size
from minitorch_cnn.kernels import reference
from minitorch_cnn.kernels.cpu import depthwise, jit


def both(x, w, gy, stride, padding, dilation):
    out_hw = tuple(output_size(x.shape[2 + a], w.shape[2 + a], stride[a], padding[a], dilation[a], "test", x.shape)
                   for a in range(2))
    args = (stride, padding, dilation)
    ours = (depthwise.depthwise_forward(x, w, *args, out_hw),) + depthwise.depthwise_backward(gy, x, w, *args)
    ref = (reference.depthwise_forward(x, w, *args, out_hw),) + reference.depthwise_backward(gy, x, w, *args)
    return ours, ref


def gy_for(x, w, stride, padding, dilation, rng):
    out_hw = [output_size(x.shape[2 + a], w.shape[2 + a], stride[a], padding[a], dilation[a], "test", x.shape)
              for a in range(2)]
    return rng.standard_normal((x.shape[0], w.shape[0], *out_hw))


@pytest.mark.parametrize("chunks", [1, 3, 7, 1000])
@pytest.mark.parametrize("stride", [(1, 1), (2, 2)])
def test_uneven_work_split_matches_reference(monkeypatch, chunks, stride):
    # 5 channels, 11 images in stacks of 3 (the last one of 2): 20 units, which 3 and 7 pieces cut unevenly
    monkeypatch.setattr(depthwise, "_chunks", lambda units: max(1, min(units, chunks)))
    hq, wq = depthwise.phase_grid((8 // stride[0], 8 // stride[1]), (3, 3), stride, (1, 1))
    monkeypatch.setattr(depthwise, "STACK_ELEMENTS", 3 * stride[0] * stride[1] * hq * wq)
    assert depthwise.stack_size(11, stride, hq, wq) == 3
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((11, 5, 8, 8)), rng.standard_normal((5, 1, 3, 3))
    args = (stride, (1, 1), (1, 1))
    for name, got, want in zip(("y", "dx", "dw"), *both(x, w, gy_for(x, w, *args, rng), *args)):
        assert rel_err(got, want) <= 1e-10, name


@pytest.mark.parametrize("kernel,padding,dilation", [((3, 3), (1, 1), (1, 1)), ((3, 2), (2, 1), (2, 1)),
                                                     ((1, 1), (0, 0), (1, 1)), ((4, 4), (0, 3), (1, 2))])
def test_stride_one_gather_with_a_channel_multiplier(kernel, padding, dilation):
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((7, 3, 9, 10)), rng.standard_normal((9, 1, *kernel))   # m = 3
    args = ((1, 1), padding, dilation)
    for name, got, want in zip(("y", "dx", "dw"), *both(x, w, gy_for(x, w, *args, rng), *args)):
        assert rel_err(got, want) <= 1e-10, name


def test_threaded_copies_split_channels_unevenly():
    # 37 channels over the threaded copies' pieces, 64 images in several stacks each
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((64, 37, 8, 8)), rng.standard_normal((37, 1, 3, 3))
    assert x.size * 9 >= jit.PARALLEL_FROM
    args = ((1, 1), (1, 1), (1, 1))
    for name, got, want in zip(("y", "dx", "dw"), *both(x, w, gy_for(x, w, *args, rng), *args)):
        assert rel_err(got, want) <= 1e-10, name


@pytest.mark.parametrize("stride", [(1, 1), (2, 2)])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_bad_gradient_reaches_only_its_window(stride, bad):
    x, w = np.ones((3, 2, 6, 6)), np.ones((2, 1, 3, 3))
    gy = np.ones((3, 2, 6 // stride[0], 6 // stride[1]))
    gy[1, 0, 1, 1] = bad
    (_, dx, _), (_, want, _) = both(x, w, gy, stride, (1, 1), (1, 1))
    np.testing.assert_array_equal(np.isnan(dx), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(dx), np.isinf(want))
    s = stride[0]
    expected = np.zeros(dx.shape, bool)
    expected[1, 0, s - 1:s + 2, s - 1:s + 2] = True   # the 3x3 window of output (1, 1), padding 1
    assert np.array_equal(~np.isfinite(dx), expected)
    np.testing.assert_array_equal(dx[np.isfinite(want)], want[np.isfinite(want)])


@pytest.mark.parametrize("hw", [(1, 1), (2, 2), (4, 3), (5, 7)])
def test_stride_one_shared_padding_keeps_neighbours_apart(hw):
    # grid_layout lets neighbouring rows and images share their zero padding; a NaN at the last pixel of one
    # image and the first of the next must still reach only their own windows' outputs, for every kernel,
    # padding and dilation that fits, in stacks of 2 (the last stack short: 5 images)
    rng = np.random.default_rng(8)
    for kh, kw, ph, pw, d in [(k1, k2, p1, p2, d) for k1 in (1, 2, 3, 4) for k2 in (1, 3) for p1 in (0, 1, 2)
                              for p2 in (0, 2) for d in (1, 2)]:
        if (kh - 1) * d + 1 > hw[0] + 2 * ph or (kw - 1) * d + 1 > hw[1] + 2 * pw:
            continue
        x, w = rng.standard_normal((5, 2, *hw)), rng.standard_normal((2, 1, kh, kw))
        x[0, 1, -1, -1] = x[1, 1, 0, 0] = np.nan
        args = ((1, 1), (ph, pw), (d, d))
        out_hw = [output_size(hw[a], (kh, kw)[a], 1, (ph, pw)[a], d, "test", x.shape) for a in range(2)]
        hq, wq, _ = depthwise.grid_layout(hw, out_hw, (kh, kw), *args)
        saved, depthwise.STACK_ELEMENTS = depthwise.STACK_ELEMENTS, 2 * hq * wq
        try:
            ours, ref = both(x, w, gy_for(x, w, *args, rng), *args)
        finally:
            depthwise.STACK_ELEMENTS = saved
        for name, got, want in zip(("y", "dx", "dw"), ours, ref):
            where = (name, kh, kw, ph, pw, d)
            if name == "dw":   # NaN at more taps than needed is allowed there (see the backward kernel)
                assert np.isnan(got[np.isnan(want)]).all(), where
                continue
            assert np.array_equal(np.isnan(got), np.isnan(want)), where
            assert rel_err(got[~np.isnan(want)], want[~np.isnan(want)]) <= 1e-10, where
