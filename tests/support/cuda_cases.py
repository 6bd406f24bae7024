"""Shared by the CUDA kernel tests: one comparison of a kernel module against kernels/reference.

``compare_all(kernels, cfg, to_device, to_host)`` runs every kernel of ``kernels`` (the CUDA wrappers,
on the emulator or a real GPU) and the reference on the same inputs and returns the worst error per
kernel, relative to the largest reference value; the callers assert the bounds.
"""
import numpy as np
from hypothesis import strategies as st

from minitorch_cnn.functional.checks import output_size
from minitorch_cnn.kernels import reference

TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}


def rel_err(got, want, floor=0.0):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = max(np.abs(want).max(initial=0.0), floor, 1e-30)
    return float(np.abs(got - want).max(initial=0.0) / scale)


@st.composite
def windowed(draw):
    """Odd sizes, windows over the border, stride, padding, dilation; from 1 element to a few thousand."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pad = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))   # max-pool needs pad <= k/2
    span = (dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1)
    h = draw(st.integers(max(1, span[0] - 2 * pad[0]), 13))
    w = draw(st.integers(max(1, span[1] - 2 * pad[1]), 13))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 6)), h, w)
    out_hw = tuple(output_size(shape[2 + a], (kh, kw)[a], stride[a], pad[a], dil[a], "test", shape) for a in range(2))
    return dict(shape=shape, kernel=(kh, kw), stride=stride, padding=pad, dilation=dil, out_hw=out_hw,
                dtype=draw(st.sampled_from([np.float32, np.float64])), m=draw(st.integers(1, 2)))


def compare_all(k, cfg, dev=lambda a: a, host=np.asarray, seed=0):
    """kernel name -> worst relative error of module ``k`` against the reference for one configuration."""
    rng = np.random.default_rng(seed)
    dtype, errs = cfg["dtype"], {}
    conv = (cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"], cfg["out_hw"])

    def check(name, got, want, floor=0.0):
        assert host(got).dtype == want.dtype, (name, host(got).dtype, want.dtype)
        errs[name] = max(errs.get(name, 0.0), rel_err(host(got), want, floor))

    x = rng.standard_normal(cfg["shape"]).astype(dtype)
    cols = reference.im2col(x, *conv)
    check("im2col", k.im2col(dev(x), *conv), cols)
    g = rng.standard_normal(cols.shape).astype(dtype)
    check("col2im", k.col2im(dev(g), x.shape, *conv), reference.col2im(g, x.shape, *conv))

    w = rng.standard_normal((cfg["shape"][1] * cfg["m"], 1, *cfg["kernel"])).astype(dtype)
    dconv = conv[1:4]
    y = reference.depthwise_forward(x, w, *dconv, cfg["out_hw"])
    check("depthwise_forward", k.depthwise_forward(dev(x), dev(w), *dconv, cfg["out_hw"]), y)
    gy = rng.standard_normal(y.shape).astype(dtype)
    (dx, dw), (rdx, rdw) = k.depthwise_backward(dev(gy), dev(x), dev(w), *dconv), \
        reference.depthwise_backward(gy, x, w, *dconv)
    check("depthwise_backward (input)", dx, rdx)
    check("depthwise_backward (weight)", dw, rdw)
    assert k.depthwise_backward(dev(gy), dev(x), dev(w), *dconv, need_dx=False)[0] is None

    # pooling: no dilation; plant ties (the first maximum must win) and a NaN-free input
    pool = (cfg["kernel"], cfg["stride"], cfg["padding"])
    p_hw = tuple(output_size(cfg["shape"][2 + a], cfg["kernel"][a], cfg["stride"][a], cfg["padding"][a], 1, "test",
                             cfg["shape"]) for a in range(2))
    xt = x.copy()
    xt[..., ::2] = xt[..., :1]
    (py, parg), (ry, rarg) = k.max_pool_forward(dev(xt), *pool, p_hw), reference.max_pool_forward(xt, *pool, p_hw)
    check("max_pool_forward", py, ry)
    assert np.array_equal(host(parg), rarg), "max_pool_forward: argmax differs"
    gp = rng.standard_normal(ry.shape).astype(dtype)
    check("max_pool_backward", k.max_pool_backward(dev(gp), parg, xt.shape, *pool),
          reference.max_pool_backward(gp, rarg, xt.shape, *pool))
    divisor = rng.integers(1, 10, size=p_hw).astype(dtype)
    check("avg_pool_forward", k.avg_pool_forward(dev(x), *pool, p_hw, dev(divisor)),
          reference.avg_pool_forward(x, *pool, p_hw, divisor))
    check("avg_pool_backward", k.avg_pool_backward(dev(gp), x.shape, *pool, dev(divisor)),
          reference.avg_pool_backward(gp, x.shape, *pool, divisor))

    xb = (x * 3 + 1).astype(dtype)
    gamma, beta = rng.standard_normal(x.shape[1]).astype(dtype), rng.standard_normal(x.shape[1]).astype(dtype)
    got, want = k.batch_norm_forward(dev(xb), dev(gamma), dev(beta), 1e-5), \
        reference.batch_norm_forward(xb, gamma, beta, 1e-5)
    for part, a, b in zip(("y", "mean", "var", "inv_std"), got, want):
        check(f"batch_norm_forward ({part})", a, b)
    gb = rng.standard_normal(x.shape).astype(dtype)
    # dx is a difference of terms of size |gy * gamma * inv_std| that cancel (exactly, with two values per
    # channel): measure its error against that size, not against a result that may be rounding noise.
    # dgamma and dbeta are sums whose terms may cancel: the reference's own float32 rounding is then
    # ~1e-7 of the sum of |terms|, which is the size their errors are measured against.
    per_channel = lambda v: v.reshape(1, -1, 1, 1)  # noqa: E731
    x_hat = (xb - per_channel(want[1])) * per_channel(want[3])
    floors = {"dx": float(np.abs(gb * per_channel(gamma) * per_channel(want[3])).max()),
              "dgamma": float(np.abs(gb * x_hat).sum(axis=(0, 2, 3)).max()),
              "dbeta": float(np.abs(gb).sum(axis=(0, 2, 3)).max())}
    for part, a, b in zip(("dx", "dgamma", "dbeta"),
                          k.batch_norm_backward(dev(gb), dev(xb), dev(gamma), got[1], got[3]),
                          reference.batch_norm_backward(gb, xb, gamma, want[1], want[3])):
        check(f"batch_norm_backward ({part})", a, b, floors[part])

    xc = x * 4
    xc.flat[0] = np.nan
    for high in (None, 6.0):
        (cy, cm), (ry, rm) = k.clamp_forward(dev(xc), high), reference.clamp_forward(xc, high)
        assert np.array_equal(host(cm), rm) and np.isnan(host(cy).flat[0])
        check("clamp_forward" + (" (ReLU6)" if high else " (ReLU)"), host(cy)[1:] if cy.ndim == 1 else
              host(cy).reshape(-1)[1:], ry.reshape(-1)[1:])
        gc = rng.standard_normal(x.shape).astype(dtype)
        cg, rg = k.clamp_backward(dev(gc), cy, high), reference.clamp_backward(gc, ry, high)
        assert np.array_equal(host(cg), rg), "clamp_backward" + (" (ReLU6)" if high else " (ReLU)")
    return errs
