"""The Numba kernels (kernels/cpu) against the readable reference kernels (kernels/reference).

Both are given the same random inputs and settings; float64 results must agree to
rounding (1e-12 relative), float32 to 1e-5, including padding, stride, dilation,
rectangular kernels and windows that hang over the border. About one hypothesis draw in four is large
enough (>= ``jit.PARALLEL_FROM`` elements of work) to run the threaded copies of the kernels.
"""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from minitorch_cnn.functional.checks import output_size
from minitorch_cnn.kernels import cpu, reference
from minitorch_cnn.kernels.cpu import jit


def close(a, b, dtype):
    tol = 1e-12 if dtype == np.float64 else 1e-5
    scale = max(np.abs(b).max(initial=0.0), 1e-30)
    assert a.dtype == b.dtype == dtype
    assert np.abs(a.astype(np.float64) - b).max(initial=0.0) / scale <= tol


@st.composite
def windowed(draw, pooling=False):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    dil = (1, 1) if pooling else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    if pooling:
        ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    else:
        ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    span = (dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1)
    if draw(st.integers(0, 3)) == 0:     # one draw in four is large: >= 4*8*48*48 elements, the threaded path
        shape = (4, 8, draw(st.integers(48, 56)), draw(st.integers(48, 56)))
        stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    else:
        h = draw(st.integers(max(1, span[0] - 2 * ph), 11))
        w = draw(st.integers(max(1, span[1] - 2 * pw), 11))
        stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        shape = (draw(st.integers(1, 3)), draw(st.integers(1, 5)), h, w)
    out_hw = tuple(output_size(shape[2 + a], (kh, kw)[a], stride[a], (ph, pw)[a], dil[a], "test", shape)
                   for a in range(2))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return dict(shape=shape, kernel=(kh, kw), stride=stride, padding=(ph, pw), dilation=dil, out_hw=out_hw,
                dtype=dtype, m=draw(st.integers(1, 2)))


@settings(max_examples=80, deadline=None)
@given(windowed())
def test_im2col_col2im_and_depthwise_match_reference(cfg):
    rng = np.random.default_rng(0)
    dtype, args = cfg["dtype"], (cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"], cfg["out_hw"])
    x = rng.standard_normal(cfg["shape"]).astype(dtype)
    cols = cpu.im2col(x, *args)
    close(cols, reference.im2col(x, *args), dtype)
    g = rng.standard_normal(cols.shape).astype(dtype)
    close(cpu.col2im(g, x.shape, *args), reference.col2im(g, x.shape, *args), dtype)

    c = cfg["shape"][1]
    w = rng.standard_normal((c * cfg["m"], 1, *cfg["kernel"])).astype(dtype)
    conv_args = (cfg["stride"], cfg["padding"], cfg["dilation"])
    y = cpu.depthwise_forward(x, w, *conv_args, cfg["out_hw"])
    close(y, reference.depthwise_forward(x, w, *conv_args, cfg["out_hw"]), dtype)
    gy = rng.standard_normal(y.shape).astype(dtype)
    (dx, dw), (rdx, rdw) = cpu.depthwise_backward(gy, x, w, *conv_args), reference.depthwise_backward(gy, x, w,
                                                                                                    *conv_args)
    close(dx, rdx, dtype)
    close(dw, rdw, dtype)


@settings(max_examples=80, deadline=None)
@given(windowed(pooling=True))
def test_pooling_matches_reference(cfg):
    rng = np.random.default_rng(1)
    dtype, args = cfg["dtype"], (cfg["kernel"], cfg["stride"], cfg["padding"])
    x = rng.standard_normal(cfg["shape"]).astype(dtype)
    x[..., ::2] = x[..., :1]  # plant ties: the first maximum must win in both
    y, arg = cpu.max_pool_forward(x, *args, cfg["out_hw"])
    ry, rarg = reference.max_pool_forward(x, *args, cfg["out_hw"])
    close(y, ry, dtype)
    assert np.array_equal(arg, rarg)
    gy = rng.standard_normal(y.shape).astype(dtype)
    close(cpu.max_pool_backward(gy, arg, x.shape, *args), reference.max_pool_backward(gy, rarg, x.shape, *args), dtype)

    divisor = rng.integers(1, 10, size=cfg["out_hw"]).astype(dtype)
    close(cpu.avg_pool_forward(x, *args, cfg["out_hw"], divisor),
          reference.avg_pool_forward(x, *args, cfg["out_hw"], divisor), dtype)
    close(cpu.avg_pool_backward(gy, x.shape, *args, divisor),
          reference.avg_pool_backward(gy, x.shape, *args, divisor), dtype)


def test_max_pool_propagates_nan_like_torch():
    x = np.zeros((1, 1, 2, 2), np.float32)
    x[0, 0, 1, 0] = np.nan
    y, _ = cpu.max_pool_forward(x, (2, 2), (2, 2), (0, 0), (1, 1))
    assert np.isnan(y[0, 0, 0, 0])


def test_threaded_path_matches_reference_on_large_inputs():
    # above jit.PARALLEL_FROM elements of work the threaded copies of the kernels run
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 16, 33, 31)).astype(np.float32)
    args = ((3, 3), (1, 2), (1, 1), (1, 1))
    out_hw = (33, 16)
    cols = cpu.im2col(x, *args, out_hw)
    assert cols.size >= jit.PARALLEL_FROM
    close(cols, reference.im2col(x, *args, out_hw), np.float32)
    close(cpu.col2im(cols, x.shape, *args, out_hw), reference.col2im(cols, x.shape, *args, out_hw), np.float32)
    w = rng.standard_normal((32, 1, 3, 3)).astype(np.float32)
    y = cpu.depthwise_forward(x, w, (1, 2), (1, 1), (1, 1), out_hw)
    close(y, reference.depthwise_forward(x, w, (1, 2), (1, 1), (1, 1), out_hw), np.float32)
    for got, want in zip(cpu.depthwise_backward(y, x, w, (1, 2), (1, 1), (1, 1)),
                         reference.depthwise_backward(y, x, w, (1, 2), (1, 1), (1, 1))):
        close(got, want, np.float32)
    pool = ((3, 3), (2, 2), (1, 1))
    y, arg = cpu.max_pool_forward(x, *pool, (17, 16))
    ry, rarg = reference.max_pool_forward(x, *pool, (17, 16))
    close(y, ry, np.float32)
    assert np.array_equal(arg, rarg)
    close(cpu.max_pool_backward(y, arg, x.shape, *pool), reference.max_pool_backward(y, rarg, x.shape, *pool),
          np.float32)
    div = np.full((17, 16), 9.0, np.float32)
    close(cpu.avg_pool_forward(x, *pool, (17, 16), div), reference.avg_pool_forward(x, *pool, (17, 16), div),
          np.float32)
    close(cpu.avg_pool_backward(y, x.shape, *pool, div), reference.avg_pool_backward(y, x.shape, *pool, div),
          np.float32)


def test_batch_norm_matches_reference():
    rng = np.random.default_rng(3)
    for shape in [(4, 3, 5, 5), (6, 5), (3, 2, 7), (64, 16, 16, 16)]:
        for dtype in (np.float32, np.float64):
            x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
            gamma, beta = rng.standard_normal(shape[1]).astype(dtype), rng.standard_normal(shape[1]).astype(dtype)
            got, want = cpu.batch_norm_forward(x, gamma, beta, 1e-5), reference.batch_norm_forward(x, gamma, beta, 1e-5)
            for a, b in zip(got, want):
                close(a, b, dtype)
            gy = rng.standard_normal(shape).astype(dtype)
            for a, b in zip(cpu.batch_norm_backward(gy, x, gamma, got[1], got[3]),
                            reference.batch_norm_backward(gy, x, gamma, want[1], want[3])):
                close(a, b, dtype)


def test_every_kernel_module_offers_the_same_functions():
    # The GPU wrappers must be drop-in: the same names and the same signatures (parameter names and
    # defaults), except the CPU-only algorithms listed in cpu.CPU_ONLY.
    import inspect

    from minitorch_cnn.kernels import cuda
    shared = sorted(set(cpu.__all__) - set(cpu.CPU_ONLY))
    assert sorted(cuda.__all__) == shared
    for name in shared:
        sig = inspect.signature(getattr(cpu, name))
        assert inspect.signature(getattr(cuda, name)) == sig, name
        assert inspect.signature(getattr(reference, name)) == sig, name


def test_clamp_matches_reference():
    rng = np.random.default_rng(4)
    for shape in [(3, 4), (64, 32, 16, 16)]:   # serial and threaded
        x = (rng.standard_normal(shape) * 5).astype(np.float32)
        x.reshape(-1)[:3] = [np.nan, 0.0, 6.0]
        for high in (None, 6.0):
            (y, m), (ry, rm) = cpu.clamp_forward(x, high), reference.clamp_forward(x, high)
            assert np.array_equal(y, ry, equal_nan=True) and np.array_equal(m, rm) and y.dtype == x.dtype
