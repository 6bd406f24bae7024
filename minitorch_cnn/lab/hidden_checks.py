"""The grader's hidden checks: one function per lab exercise, and ``GRADERS`` (exercise name -> check).

A check ``grade_x(fn, draw, st)`` draws a case with hypothesis (``draw(st.integers(...))``), runs the student's
``fn`` on it and the framework's own layers on the same inputs, and raises ``Wrong`` with a sentence that
says what is wrong and where (``first_wrong``). ``grade.py`` loads a lab and runs these; the tests plant one
bug per exercise (tests/labs/test_grade.py) and see each check fail.
"""
import numpy as np


# ---------------------------------------------------------------- comparing, and saying where
def first_wrong(got, want, axes="nchw", rtol=1e-6, atol=1e-8):
    """None when ``got`` matches ``want``; else a sentence naming the first wrong element."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return f"shape {got.shape}, expected {want.shape}"
    wrong = np.argwhere(~np.isclose(got, want, rtol=rtol, atol=atol))
    if not len(wrong):
        return None
    names = axes if len(axes) == got.ndim else "abcdefgh"[:got.ndim]
    where = ", ".join(f"{a}={int(i)}" for a, i in zip(names, wrong[0]))
    return f"first at ({where}): got {got[tuple(wrong[0])]:.6g}, expected {want[tuple(wrong[0])]:.6g} " \
           f"({len(wrong)} of {got.size} wrong)"


class Wrong(AssertionError):
    """A hidden check's failure: its message says what and where."""


def expect_close(context, got, want, axes="nchw"):
    problem = first_wrong(got, want, axes)
    if problem:
        raise Wrong(f"wrong at {context}: {problem}")


# ---------------------------------------------------------------- the hidden checks, one per exercise
def _conv_case(draw, st, groups=1):
    """(x, w, b, stride, pad) with a valid output, drawn by hypothesis."""
    n, c_per, f_per = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride, pad = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    h, w = draw(st.integers(max(1, kh - 2 * pad), 7)), draw(st.integers(max(1, kw - 2 * pad), 7))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    return (rng.standard_normal((n, c_per * groups, h, w)), rng.standard_normal((f_per * groups, c_per, kh, kw)),
            rng.standard_normal(f_per * groups), stride, pad)


def _framework_conv(x, w, b, stride, pad, groups=1):
    import minitorch_cnn as mt
    from minitorch_cnn import functional as F
    return F.conv2d(mt.Tensor(x), mt.Tensor(w), None if b is None else mt.Tensor(b), stride=stride, padding=pad,
                    groups=groups).data


def _context(x, w, stride, pad):
    return f"stride={stride} pad={pad} x {x.shape} w {w.shape}"


def grade_conv(fn, draw, st):
    x, w, b, stride, pad = _conv_case(draw, st)
    expect_close(_context(x, w, stride, pad), fn(x, w, b, stride, pad), _framework_conv(x, w, b, stride, pad),
                 "nfij")


def grade_im2col(fn, draw, st):
    from minitorch_cnn.kernels import reference
    x, w, _, stride, pad = _conv_case(draw, st)
    kh, kw = w.shape[2:]
    out_hw = ((x.shape[2] + 2 * pad - kh) // stride + 1, (x.shape[3] + 2 * pad - kw) // stride + 1)
    want = reference.im2col(x, (kh, kw), (stride, stride), (pad, pad), (1, 1), out_hw)
    expect_close(_context(x, w, stride, pad) + " (rows (c, i, j), columns (n, y, x))",
                 fn(x, kh, kw, stride, pad), want, "rc")


def grade_conv_backward(fn, draw, st):
    import minitorch_cnn as mt
    from minitorch_cnn import functional as F
    x, w, b, stride, pad = _conv_case(draw, st)
    ts = [mt.Tensor(a, requires_grad=True) for a in (x, w, b)]
    out = F.conv2d(*ts, stride=stride, padding=pad)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    (out * mt.Tensor(dout)).sum().backward()
    got = fn(dout, x, w, stride, pad)
    for name, g, t, axes in zip(("dx", "dw", "db"), got, ts, ("ncij", "fcij", "f")):
        expect_close(f"{name}, {_context(x, w, stride, pad)}", g, t.grad, axes)


def grade_max_pool_backward(fn, draw, st):
    import minitorch_cnn as mt
    from minitorch_cnn import functional as F
    k = draw(st.integers(1, 3))
    n, c, ho, wo = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3)),
                    draw(st.integers(1, 3)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    x = rng.permutation(n * c * ho * k * wo * k).reshape(n, c, ho * k, wo * k).astype(np.float64)  # no ties
    t = mt.Tensor(x, requires_grad=True)
    out = F.max_pool2d(t, k)
    dout = rng.standard_normal(out.shape)
    (out * mt.Tensor(dout)).sum().backward()
    expect_close(f"k={k} x {x.shape}", fn(dout, x, k), t.grad)


def grade_batch_norm(fn, draw, st):
    import minitorch_cnn as mt
    from minitorch_cnn import nn
    n, c, h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    if n * h * w < 2:
        n = 2                                    # one value per channel has no unbiased variance
    momentum = draw(st.sampled_from([0.1, 0.5, 1.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    x, gamma, beta = rng.standard_normal((n, c, h, w)) * 2 + 1, rng.standard_normal(c), rng.standard_normal(c)
    layer = nn.BatchNorm2d(c, momentum=momentum).double()
    layer.weight.data[:], layer.bias.data[:] = gamma, beta
    mean, var = np.zeros(c), np.ones(c)
    context = f"x {x.shape} momentum={momentum}"
    expect_close(f"training, {context}", fn(x, gamma, beta, mean, var, True, momentum), layer(mt.Tensor(x)).data)
    expect_close(f"running_mean, {context}", mean, layer.running_mean, "c")
    expect_close(f"running_var (unbiased), {context}", var, layer.running_var, "c")
    layer.eval()
    expect_close(f"eval, {context}", fn(x, gamma, beta, mean, var, False, momentum), layer(mt.Tensor(x)).data)


def grade_batch_norm_backward(fn, draw, st):
    import minitorch_cnn as mt
    from minitorch_cnn import nn
    n, c, h, w = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    n = max(n, 2) if h * w == 1 else n           # a channel of one value has no variance to normalise by
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    x, dout = rng.standard_normal((n, c, h, w)) * 2 + 1, rng.standard_normal((n, c, h, w))
    gamma = rng.standard_normal(c)
    layer = nn.BatchNorm2d(c).double()
    layer.weight.data[:] = gamma
    t = mt.Tensor(x, requires_grad=True)
    (layer(t) * mt.Tensor(dout)).sum().backward()
    got = fn(dout, x, gamma)
    for name, g, want, axes in zip(("dx", "dgamma", "dbeta"), got, (t.grad, layer.weight.grad, layer.bias.grad),
                                   ("nchw", "c", "c")):
        expect_close(f"{name}, x {x.shape}", g, want, axes)


def grade_grouped_conv(fn, draw, st):
    groups = draw(st.integers(1, 4))
    x, w, _, _, pad = _conv_case(draw, st, groups)
    expect_close(f"groups={groups} pad={pad} x {x.shape} w {w.shape}", fn(x, w, groups, pad),
                 _framework_conv(x, w, None, 1, pad, groups), "nfij")


def grade_separable_ratio(fn, draw, st):
    n, k = draw(st.integers(1, 512)), draw(st.integers(1, 7))
    c = 8                                         # the ratio does not depend on the input channels
    want = (c * k * k + c * n) / (c * n * k * k)
    expect_close(f"N={n} k={k}", np.array([fn(n, k)]), np.array([want]), "r")


def grade_inception_out_channels(fn, draw, st):
    from zoo.models.googlenet import Inception
    widths = [draw(st.integers(1, 16)) for _ in range(6)]
    want = Inception(4, *widths).out_channels
    got = fn(*widths)
    if got != want:
        raise Wrong(f"wrong for widths {widths}: {got}, expected {want}")


def grade_googlenet_loss(fn, draw, st):
    import minitorch_cnn as mt
    from zoo import googlenet_loss
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    n = draw(st.integers(1, 5))
    outs = tuple(mt.Tensor(rng.standard_normal((n, 10))) for _ in range(3))
    y = rng.integers(0, 10, n)
    aux, main = draw(st.sampled_from([0.0, 0.3, 1.0])), draw(st.sampled_from([1.0, 0.7, 0.0]))
    expect_close(f"aux_weight={aux} main_weight={main} batch {n}", np.array([fn(outs, y, aux, main).item()]),
                 np.array([googlenet_loss(outs, y, aux, main).item()]), "r")


def _launch(thread, n, *args):
    for i in range(n):
        thread(i, *args)


def grade_relu6_thread(fn, draw, st):
    from minitorch_cnn.kernels import reference
    size = draw(st.integers(1, 50))
    x = np.random.default_rng(draw(st.integers(0, 2 ** 16))).standard_normal(size).astype(np.float32) * 5
    x[: min(size, 3)] = [0.0, 6.0, -0.0][: min(size, 3)]             # the boundaries, where the mask is 0
    y, mask = np.empty_like(x), np.empty(size, np.bool_)
    _launch(fn, size, x, y, mask)
    want_y, want_mask = reference.clamp_forward(x, 6.0)
    expect_close(f"{size} values", y, want_y, "i")
    expect_close(f"{size} values (mask)", mask, want_mask, "i")


def grade_im2col_thread(fn, draw, st):
    from minitorch_cnn.kernels import reference
    x, w, _, s, p = _conv_case(draw, st)
    x = x.astype(np.float32)
    kh, kw = w.shape[2:]
    ho, wo = (x.shape[2] + 2 * p - kh) // s + 1, (x.shape[3] + 2 * p - kw) // s + 1
    cols = np.full((x.shape[1] * kh * kw, x.shape[0] * ho * wo), np.nan, np.float32)
    _launch(fn, cols.size, x, cols, kh, kw, s, p, ho, wo)
    expect_close(_context(x, w, s, p), cols, reference.im2col(x, (kh, kw), (s, s), (p, p), (1, 1), (ho, wo)), "rc")


def _random(draw, st, shape):
    return np.random.default_rng(draw(st.integers(0, 2 ** 16))).standard_normal(shape)


def _shape(draw, st):
    return tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))


def _function_backward(function_class, x, gy):
    import minitorch_cnn as mt
    t = mt.Tensor(x, requires_grad=True)
    y = function_class()(t)
    (y * mt.Tensor(gy)).sum().backward()
    return y.data, t.grad


def grade_tanh(cls, draw, st):
    x, gy = _random(draw, st, _shape(draw, st)) * 3, _random(draw, st, (1,))
    y, dx = _function_backward(cls, x, np.broadcast_to(gy, x.shape))
    expect_close(f"forward, x {x.shape}", y, np.tanh(x), "abc")
    expect_close(f"backward, x {x.shape}", dx, gy * (1 - np.tanh(x) ** 2), "abc")


def grade_softplus(cls, draw, st):
    x = _random(draw, st, _shape(draw, st)) * 3
    gy = _random(draw, st, x.shape)
    _, dx = _function_backward(cls, x, gy)
    expect_close(f"backward, x {x.shape}", dx, gy / (1 + np.exp(-x)), "abc")


def grade_numeric_gradient(fn, draw, st):
    x, w = _random(draw, st, _shape(draw, st)), _random(draw, st, (1,))
    got = fn(lambda a: float((w * a ** 3).sum()), x.copy())
    problem = first_wrong(got, 3 * w * x ** 2, "abc", rtol=1e-5, atol=1e-6)
    if problem:
        raise Wrong(f"wrong for f(x) = sum({w[0]:.3g} x^3), x {x.shape}: {problem}")


def grade_saturated_fraction(fn, draw, st):
    a = np.clip(_random(draw, st, _shape(draw, st)) * 6, 0, 6)
    expect_close(f"{a.size} values, {int((a == 6).sum())} at 6", np.array([fn(a)]), np.array([np.mean(a >= 6)]), "r")


def grade_five_by_five_weights(fn, draw, st):
    c_in, red, c_out, use = (draw(st.integers(1, 256)), draw(st.integers(1, 64)), draw(st.integers(1, 128)),
                             draw(st.booleans()))
    want = c_in * red + red * c_out * 25 if use else c_in * c_out * 25
    if fn(c_in, red, c_out, use) != want:
        raise Wrong(f"wrong for c_in={c_in} reduce={red} c_out={c_out} use_reduction={use}: "
                    f"{fn(c_in, red, c_out, use)}, expected {want}")


def _same_module(mine, ref, x, context):
    """Load ``ref``'s weights into ``mine`` (same names and shapes) and compare the eval-mode outputs."""
    import minitorch_cnn as mt
    try:
        mine.load_state_dict(ref.state_dict())
    except (ValueError, KeyError) as err:
        raise Wrong(f"wrong at {context}: parameters differ from zoo's ({err})") from None
    expect_close(context, mine.eval()(mt.Tensor(x)).data, ref.eval()(mt.Tensor(x)).data)


def grade_lenet5(cls, draw, st):
    import zoo
    c, k, n = draw(st.integers(1, 3)), draw(st.integers(2, 12)), draw(st.integers(1, 3))
    _same_module(cls(c, k).double(), zoo.LeNet5(c, k).double(), _random(draw, st, (n, c, 32, 32)),
                 f"in_channels={c} num_classes={k} batch {n}")


def grade_basic_block(cls, draw, st):
    from zoo.models.resnet import BasicBlock
    c_in, c_out, stride = draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 2))
    _same_module(cls(c_in, c_out, stride).double(), BasicBlock(c_in, c_out, stride).double(),
                 _random(draw, st, (2, c_in, 6, 5)), f"in={c_in} out={c_out} stride={stride}")


def grade_zero_init_last_bn(fn, draw, st):
    import minitorch_cnn as mt
    from zoo.models.resnet import BasicBlock
    c = draw(st.integers(1, 6))
    block = BasicBlock(c, c).double()
    block.bn2.bias.data[:] = 1.0                               # not zero already
    x = _random(draw, st, (2, c, 5, 5))
    expect_close(f"channels={c}: block(x) vs relu(x)", fn(block).eval()(mt.Tensor(x)).data, np.maximum(x, 0))


# ---------------------------------------------------------------- lab 9: attribution
def grade_gradcam_from_parts(fn, draw, st):
    c, h, w = draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    a, da = rng.standard_normal((c, h, w)), rng.standard_normal((c, h, w))
    weights, cam = fn(a, da)
    expect_close(f"weights, A {a.shape}", weights, da.mean(axis=(1, 2)), "c")
    expect_close(f"map, A {a.shape}", cam, np.maximum(np.einsum("c,chw->hw", da.mean(axis=(1, 2)), a), 0), "hw")


def grade_gap_head_weights(fn, draw, st):
    import minitorch_cnn as mt
    from minitorch_cnn import nn
    from minitorch_cnn.lab import attribution
    c, classes = draw(st.integers(1, 4)), draw(st.integers(2, 5))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    label = draw(st.integers(0, classes - 1))
    mt.manual_seed(draw(st.integers(0, 2 ** 16)))
    net = nn.Sequential(nn.Conv2d(2, c, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(c, classes)).double().eval()
    x = np.random.default_rng(draw(st.integers(0, 2 ** 16))).standard_normal((1, 2, h, w))
    expect_close(f"C={c} h={h} w={w} label={label}", fn(net[4].weight.numpy(), label, h, w),
                 attribution.gradcam_parts(net, x, "1", label)[2], "c")


def grade_occlusion(fn, draw, st):
    import minitorch_cnn as mt
    from minitorch_cnn import nn
    from minitorch_cnn.lab import attribution
    c, h, w = draw(st.integers(1, 3)), draw(st.integers(3, 9)), draw(st.integers(3, 9))
    patch = draw(st.integers(1, min(h, w)))
    stride, baseline = draw(st.integers(1, 4)), draw(st.sampled_from([0.0, -1.0, 0.5]))
    mt.manual_seed(draw(st.integers(0, 2 ** 16)))
    net = nn.Sequential(nn.Conv2d(c, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * h * w, 3)).double()
    x = np.random.default_rng(draw(st.integers(0, 2 ** 16))).standard_normal((1, c, h, w))
    label = draw(st.integers(0, 2))
    expect_close(f"x {x.shape} patch={patch} stride={stride} baseline={baseline}",
                 fn(net.eval(), x.copy(), label, patch, stride, baseline),
                 attribution.occlusion(net, x, label, patch, stride, baseline), "ij")


def grade_cascade(fn, draw, st):
    import minitorch_cnn as mt
    from minitorch_cnn import nn
    from minitorch_cnn.lab import attribution
    mt.manual_seed(draw(st.integers(0, 2 ** 16)))
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 36, 8), nn.ReLU(),
                        nn.Linear(8, 3)).double().eval()
    x = np.random.default_rng(draw(st.integers(0, 2 ** 16))).standard_normal((1, 1, 6, 6))
    label, seed = draw(st.integers(0, 2)), draw(st.integers(0, 100))
    got = fn(net, x, label, attribution.saliency, seed)
    want = attribution.randomisation_check(net, x, attribution.saliency, label, seed)
    if [n for n, _ in got] != [n for n, _ in want]:
        raise Wrong(f"wrong layers or order: got {[n for n, _ in got]}, expected {[n for n, _ in want]}")
    expect_close(f"rho per layer, seed={seed}", [r for _, r in got], [r for _, r in want], "l")


def grade_max_pool_function(cls, draw, st):
    import minitorch_cnn as mt
    from minitorch_cnn import functional as F
    k, s = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    p = draw(st.integers(0, k // 2))
    h, w = draw(st.integers(k, 7)), draw(st.integers(k, 7))
    x = np.random.default_rng(draw(st.integers(0, 2 ** 16))).permutation(2 * h * w).reshape(1, 2, h, w) * 1.0
    out_hw = ((h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
    dout = np.random.default_rng(1).standard_normal((1, 2) + out_hw)
    t = mt.Tensor(x, requires_grad=True)
    (cls((k, k), (s, s), (p, p), out_hw)(t) * mt.Tensor(dout)).sum().backward()
    ref = mt.Tensor(x, requires_grad=True)
    (F.max_pool2d(ref, k, s, p) * mt.Tensor(dout)).sum().backward()
    expect_close(f"dx, k={k} stride={s} pad={p} x {x.shape}", t.grad, ref.grad)


GRADERS = {          # the lab's function name -> its hidden check
    "conv_naive": grade_conv, "conv_im2col": grade_conv, "im2col_naive": grade_im2col,
    "im2col_vectorised": grade_im2col, "batch_norm_backward": grade_batch_norm_backward,
    "conv_backward_naive": grade_conv_backward, "max_pool_backward": grade_max_pool_backward,
    "batch_norm": grade_batch_norm, "grouped_conv": grade_grouped_conv, "separable_ratio": grade_separable_ratio,
    "inception_out_channels": grade_inception_out_channels, "googlenet_loss": grade_googlenet_loss,
    "relu6_thread": grade_relu6_thread, "im2col_thread": grade_im2col_thread,
    "Tanh": grade_tanh, "Softplus": grade_softplus, "numeric_gradient": grade_numeric_gradient,
    "saturated_fraction": grade_saturated_fraction, "five_by_five_weights": grade_five_by_five_weights,
    "MyLeNet5": grade_lenet5, "BasicBlock": grade_basic_block, "zero_init_last_bn": grade_zero_init_last_bn,
    "gradcam_from_parts": grade_gradcam_from_parts, "gap_head_weights": grade_gap_head_weights,
    "occlusion": grade_occlusion, "cascade": grade_cascade, "FixedMaxPoolFunction": grade_max_pool_function,
}
