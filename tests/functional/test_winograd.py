"""Winograd F(2x2, 3x3) convolution against im2col, finite differences and the reference kernels.

Winograd and im2col compute the same convolution by different sums, so in float64 they agree to
rounding (1e-10 relative); in float32 Winograd's transforms add a little rounding of their own,
held within 1e-5 of the exact (float64) result. Shapes come from hypothesis: odd sizes (a
partial last tile), padding 0, 1 and 2, batch 1, a single channel.
"""
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


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 3), c=st.integers(1, 5), f=st.integers(1, 4), h=st.integers(1, 11), w=st.integers(1, 11),
       p=st.sampled_from([0, 1, 2]), seed=st.integers(0, 2 ** 16))
def test_winograd_matches_im2col_in_float64(n, c, f, h, w, p, seed):
    if min(h, w) + 2 * p < 3:
        return   # no output position: conv2d rejects this shape before any algorithm runs
    arrays, gy, out_hw = _case(np.random.default_rng(seed), n, c, f, h, w, p)
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
    monkeypatch.setattr(cpu, "winograd_from_pixels", 0)   # a small map, so the check stays quick
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


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_kernel_matches_reference_across_chunks_and_threads(dtype, monkeypatch):
    rng = np.random.default_rng(3)
    cases = [(1, 3, 2, 5, 7, 1), (3, 20, 9, 9, 12, 0), (8, 64, 32, 17, 16, 2)]   # the last one runs threaded
    tol = 1e-12 if dtype == np.float64 else 1e-6
    for chunk in (1, winograd.CHUNK_BYTES):   # 1 byte: every row of tiles its own chunk
        monkeypatch.setattr(winograd, "CHUNK_BYTES", chunk)
        for n, c, f, h, w, p in cases:
            (x, wt, b), _, out_hw = _case(rng, n, c, f, h, w, p, dtype)
            u = cpu.winograd_weights(wt)
            assert u.dtype == dtype and rel_err(u, reference.winograd_weights(wt)) <= tol
            gy = rng.standard_normal((n, f) + out_hw).astype(dtype)
            got, want = cpu.winograd_weight_grad(x, gy, (p, p)), reference.winograd_weight_grad(x, gy, (p, p))
            assert got.dtype == dtype and got.shape == wt.shape and rel_err(got, want) <= tol * 10
            for bias in (None, b):
                got, want = cpu.winograd_conv(x, u, (p, p), out_hw, bias), reference.winograd_conv(x, u, (p, p),
                                                                                                   out_hw, bias)
                assert got.dtype == dtype and rel_err(got, want) <= tol


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
    # from the device's winograd_from_pixels output pixels per image (64 on the CPU: an 8x8 map) when asked
    assert conv.conv_path(64, (64, 64, 3, 3), (1, 1), (1, 1), 1, like=x, out_hw=(8, 8)) == "winograd"
    assert conv.conv_path(64, (64, 64, 3, 3), (1, 1), (1, 1), 1, like=x, out_hw=(4, 16)) == "winograd"
    assert conv.conv_path(64, (64, 64, 3, 3), (1, 1), (1, 1), 1, like=x, out_hw=(7, 9)) == "im2col"
    assert conv.plan_conv((2, 512, 4, 4), (512, 512, 3, 3), padding=1).algorithm == "im2col"
    assert conv.plan_conv((2, 512, 8, 8), (512, 512, 3, 3), padding=1).algorithm == "winograd"
    # a device whose kernels do not offer Winograd (no ``conv_algorithms``) keeps im2col
    monkeypatch.setattr(conv, "kernels", lambda *a: types.SimpleNamespace())
    assert path((64, 64, 3, 3)) == "im2col"
