"""Winograd F(m x m, 3x3) convolution against im2col, finite differences and the reference kernels.

Winograd and im2col compute the same convolution by different sums, so in float64 they agree to
rounding (1e-10 relative); in float32 Winograd's transforms add a little rounding of their own
(F(4x4, 3x3), which the CPU runs, measured 1-3e-6), held within 1e-5 of the exact (float64) result.
Shapes come from hypothesis: odd sizes (a partial last tile), padding 0, 1 and 2, batch 1, a single channel.
"""
import contextlib
import types

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.numerics import rel_err

import minitorch_cnn as mt
from minitorch_cnn import functional as F
from minitorch_cnn.functional import conv
from minitorch_cnn.kernels import cpu, reference
from minitorch_cnn.kernels.cpu import winograd


def _run(fn, arrays, gy):
    """Output and every input gradient of Function ``fn`` on ``arrays`` with upstream gradient gy."""
    tensors = [mt.Tensor(a, requires_grad=True) for a in arrays]
    y = fn(*tensors)
    y.backward(gy.astype(y.dtype))
    return [y.data] + [t.grad for t in tensors]


def _case(rng, n, c, f, h, w, p, dtype=np.float64):
    out_hw = (h + 2 * p - 2, w + 2 * p - 2)
    arrays = [rng.standard_normal((n, c, h, w)), rng.standard_normal((f, c, 3, 3)), rng.standard_normal(f)]
    gy = rng.standard_normal((n, f) + out_hw)
    return [a.astype(dtype) for a in arrays], gy, out_hw


def _both(arrays, gy, p, out_hw):
    wino = _run(conv.WinogradConv2d((p, p), out_hw), arrays, gy)
    im2col = _run(conv.Conv2d((1, 1), (p, p), (1, 1), 1, out_hw), arrays, gy)
    return wino, im2col


@contextlib.contextmanager
def only_tile(tile):
    """The CPU's Winograd runs F(tile x tile, 3x3) on every map, forward and backward, inside the block."""
    saved = cpu.winograd_tiles, cpu.winograd_from_pixels
    cpu.winograd_tiles, cpu.winograd_from_pixels = (tile,), {}
    try:
        yield
    finally:
        cpu.winograd_tiles, cpu.winograd_from_pixels = saved


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 3), c=st.integers(1, 5), f=st.integers(1, 4), h=st.integers(1, 11), w=st.integers(1, 11),
       p=st.sampled_from([0, 1, 2]), tile=st.sampled_from(cpu.winograd_tiles), seed=st.integers(0, 2 ** 16))
def test_winograd_matches_im2col_in_float64(n, c, f, h, w, p, tile, seed):
    if min(h, w) + 2 * p < 3:
        return   # no output position: conv2d rejects this shape before any algorithm runs
    arrays, gy, out_hw = _case(np.random.default_rng(seed), n, c, f, h, w, p)
    with only_tile(tile):
        for name, a, b in zip(("y", "dx", "dw", "db"), *_both(arrays, gy, p, out_hw)):
            assert a.shape == b.shape and rel_err(a, b) <= 1e-10, (name, rel_err(a, b))


@pytest.mark.parametrize("shape", [(4, 64, 64, 16, 16, 1), (2, 32, 48, 15, 9, 0), (1, 128, 16, 8, 8, 1)])
def test_winograd_float32_is_within_1e_5_of_float64(shape):
    arrays, gy, out_hw = _case(np.random.default_rng(0), *shape)
    exact = _both(arrays, gy, shape[-1], out_hw)[1]
    got = _run(conv.WinogradConv2d((shape[-1],) * 2, out_hw), [a.astype(np.float32) for a in arrays], gy)
    for name, a, b in zip(("y", "dx", "dw", "db"), got, exact):
        assert a.dtype == np.float32 and rel_err(a, b) <= 1e-5, (name, rel_err(a, b))


@pytest.mark.parametrize("p", [0, 1])
def test_winograd_path_passes_gradcheck(p, monkeypatch):
    monkeypatch.setattr(cpu, "winograd_from_pixels", {})  # any map, so the check stays small and quick
    rng = np.random.default_rng(p)
    x, w, b = rng.standard_normal((1, 16, 5, 6)), rng.standard_normal((3, 16, 3, 3)), rng.standard_normal(3)
    assert conv.conv_path(16, w.shape, (1, 1), (p, p), 1, like=x) == "winograd"
    calls = []   # which Functions' forwards ran: the check must go through Winograd, not im2col
    for cls in (conv.Conv2d, conv.WinogradConv2d):
        monkeypatch.setattr(cls, "forward", lambda self, *a, _f=cls.forward, _n=cls.__name__: calls.append(_n)
                            or _f(self, *a))
    report = mt.gradcheck(lambda *t: F.conv2d(*t, padding=p), [mt.Tensor(a, requires_grad=True) for a in (x, w, b)])
    assert report.ok(1e-6), str(report)
    assert calls and set(calls) == {"WinogradConv2d"}


@pytest.mark.parametrize("tile", cpu.winograd_tiles)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_kernel_matches_reference_across_chunks_and_threads(dtype, tile, monkeypatch):
    """The kernels against the reference's F(m x m, 3x3) computed in float64: to rounding in float64, within 1e-5
    in float32 (two float32 computations of F(4x4) can differ by twice their own rounding: 4.8e-6 measured)."""
    rng = np.random.default_rng(3)
    cases = [(1, 3, 2, 5, 7, 1), (3, 20, 9, 9, 12, 0), (8, 64, 32, 17, 16, 2)]   # the last one runs threaded
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for chunk, least in ((1, 1), (winograd.CHUNK_BYTES, winograd.MIN_TILES)):   # 1 and 1: every row of tiles
        monkeypatch.setattr(winograd, "CHUNK_BYTES", chunk)                      # its own chunk
        monkeypatch.setattr(winograd, "MIN_TILES", least)
        for n, c, f, h, w, p in cases:
            (x, wt, b), gy, out_hw = _case(rng, n, c, f, h, w, p, dtype)
            exact = [a.astype(np.float64) for a in (x, wt, b, gy)]
            u = cpu.winograd_weights(wt, tile)
            assert u.dtype == dtype and rel_err(u, reference.winograd_weights(exact[1], tile)) <= tol
            got, want = cpu.winograd_weight_grad(x, gy.astype(dtype), (p, p), tile), reference.winograd_weight_grad(
                exact[0], exact[3], (p, p), tile)
            assert got.dtype == dtype and got.shape == wt.shape and rel_err(got, want) <= tol
            for bias, exact_bias in ((None, None), (b, exact[2])):
                got = cpu.winograd_conv(x, u, (p, p), out_hw, bias)
                want = reference.winograd_conv(exact[0], reference.winograd_weights(exact[1], tile), (p, p), out_hw,
                                               exact_bias)
                assert got.dtype == dtype and rel_err(got, want) <= tol


def test_training_runs_f4x4_and_a_forward_alone_f2x2(monkeypatch):
    """conv.winograd_tile: the largest tile where a backward follows, the smallest (less float32 rounding)
    for a forward alone; the ConvPlan reports the training step's."""
    tiles = []
    monkeypatch.setattr(cpu, "winograd_weights", lambda w, tile, _f=cpu.winograd_weights: tiles.append(tile)
                        or _f(w, tile))
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 16, 8, 8)).astype(np.float32), rng.standard_normal((4, 16, 3, 3))
    with mt.no_grad():
        F.conv2d(mt.Tensor(x), mt.Tensor(w.astype(np.float32)), padding=1)
    assert tiles == [2]
    y = F.conv2d(mt.Tensor(x, requires_grad=True), mt.Tensor(w.astype(np.float32), requires_grad=True), padding=1)
    y.backward(np.ones(y.shape, np.float32))
    assert tiles == [2, 4, 4]                                  # the forward's U, then dx's of the flipped filters
    assert conv.plan_conv(x.shape, w.shape, padding=1).winograd_tile == 4
    assert conv.winograd_tile(types.SimpleNamespace(), backward=True) == 2   # kernels naming no tiles: F(2x2)
    assert conv.winograd_tile(cpu, backward=True, out_hw=(7, 9)) == 2        # F(4x4) from 64 pixels
    assert conv.winograd_tile(cpu, backward=True, out_hw=(8, 8)) == 4


def test_conv_path_picks_winograd_only_where_it_applies(monkeypatch):
    x = np.zeros((1, 64, 8, 8), np.float32)
    path = lambda w_shape, stride=(1, 1), padding=(1, 1), groups=1, dilation=(1, 1), c=64: conv.conv_path(  # noqa: E731
        c, w_shape, stride, padding, groups, dilation, like=x)
    assert path((64, 64, 3, 3)) == "winograd"
    assert path((64, 64, 3, 3), padding=(0, 0)) == "winograd"
    assert path((64, 64, 3, 3), stride=(2, 2)) == "im2col"
    assert path((64, 64, 3, 3), dilation=(2, 2)) == "im2col"
    assert path((64, 32, 3, 3), groups=2) == "im2col"
    assert path((64, 64, 5, 5)) == "im2col"
    assert path((64, 64, 3, 3), padding=(3, 3)) == "im2col"
    assert path((64, 3, 3, 3), c=3) == "im2col"          # an RGB stem: too thin for 16 multiplies
    # from the least of the device's winograd_from_pixels per image (on the CPU F(2x2) from a 4x4 map, F(4x4)
    # from an 8x8 one) when asked; a training step runs the largest tile the map allows
    assert conv.conv_path(64, (64, 64, 3, 3), (1, 1), (1, 1), 1, like=x, out_hw=(4, 4)) == "winograd"
    assert conv.conv_path(64, (64, 64, 3, 3), (1, 1), (1, 1), 1, like=x, out_hw=(2, 8)) == "winograd"
    assert conv.conv_path(64, (64, 64, 3, 3), (1, 1), (1, 1), 1, like=x, out_hw=(3, 5)) == "im2col"
    assert conv.plan_conv((2, 512, 2, 2), (512, 512, 3, 3), padding=1).algorithm == "im2col"
    small, large = (conv.plan_conv((2, 512, s, s), (512, 512, 3, 3), padding=1) for s in (4, 8))
    assert (small.algorithm, small.winograd_tile) == ("winograd", 2)
    assert (large.algorithm, large.winograd_tile) == ("winograd", 4)
    # a device whose kernels do not offer Winograd (no ``conv_algorithms``) keeps im2col
    monkeypatch.setattr(conv, "kernels", lambda *a: types.SimpleNamespace())
    assert path((64, 64, 3, 3)) == "im2col"


@pytest.mark.parametrize("tile", sorted(reference.WINOGRAD))
def test_reference_winograd_is_the_convolution_for_every_tile(tile):
    """Each F(m x m, 3x3) of the reference, forward and weight gradient, against im2col in float64: the
    matrices' every entry matters (a wrong sign or fraction is an error of order 1, not rounding)."""
    rng = np.random.default_rng(tile)
    for n, c, f, h, w, p in [(2, 3, 4, 7, 5, 1), (1, 5, 2, 9, 9, 0), (3, 2, 3, 4, 6, 2)]:
        (x, wt, b), gy, out_hw = _case(rng, n, c, f, h, w, p)
        u = reference.winograd_weights(wt, tile)
        assert u.shape == ((tile + 2) ** 2, f, c)
        want_y, want_dx, want_dw, _ = _run(conv.Conv2d((1, 1), (p, p), (1, 1), 1, out_hw), [x, wt, b], gy)
        assert rel_err(reference.winograd_conv(x, u, (p, p), out_hw, b), want_y) <= 1e-12
        assert rel_err(reference.winograd_weight_grad(x, gy, (p, p), tile), want_dw) <= 1e-12


def test_reference_refuses_a_tile_it_has_no_matrices_for():
    with pytest.raises(ValueError, match="3x3 are not offered; expected one of \\[2, 4\\]"):
        reference.winograd_weights(np.zeros((1, 1, 3, 3)), tile=3)
