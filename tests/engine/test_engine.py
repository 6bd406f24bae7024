"""The Tensor and autograd engine, against PyTorch and against finite differences.

Every operator case runs the same computation in both frameworks on identical
inputs, back-propagates the same random upstream gradient, and compares the
output and every input gradient (relative error max|a-b| / max|b|): float64 to
1e-10, float32 to 1e-5. The same case then goes through ``minitorch_cnn.gradcheck``
(float64 five-point differences, worst CS231n relative error <= 1e-6).

The second half checks the engine's behaviour rather than its arithmetic: dtypes,
no_grad, accumulation, graph shapes (diamonds, deep chains), freeing the graph,
retain_graph / retain_grad, and memory staying flat over many training steps.
"""
import gc
import sys
import tracemalloc
import weakref

import numpy as np
import pytest
import torch
from support import numerics as helpers
from support.numerics import rel_err

import minitorch_cnn as mt
from minitorch_cnn import Function, Tensor, nn, optim
from minitorch_cnn import functional as F

TOL = {np.float64: 1e-10, np.float32: 1e-5}
GRADCHECK_TOL = 1e-6


def note(op, measure, value):
    helpers.record("engine", op.split("-")[0], measure, value)


def _inputs(shapes, domain, dtype, seed):
    rng = np.random.default_rng(seed)
    out = []
    for s in shapes:
        if domain == "pos":        # log, fractional powers, divisors: keep away from 0
            a = rng.uniform(0.5, 2.0, s)
        elif domain == "ties":     # few distinct values: max has ties
            a = rng.integers(0, 3, s).astype(np.float64)
        elif domain == "zeros":    # exact zeros for powers
            a = rng.integers(-1, 2, s).astype(np.float64)
        else:
            a = rng.standard_normal(s)
        out.append(a.astype(dtype))
    return out


def _dims(axis, ndim):
    return tuple(range(ndim)) if axis is None else axis


def _reduce(name, axis, keepdims):
    """(ours, torch) pair of functions for sum/mean/max over ``axis``; max is compared with torch.amax."""
    def ours(x):
        return getattr(x, name)(axis=axis, keepdims=keepdims)

    def ref(t):
        reduce = torch.amax if name == "max" else getattr(torch, name)
        return reduce(t, dim=_dims(axis, t.ndim), keepdim=keepdims)
    return ours, ref


def _same(f):
    return f, f


def _case(name, fns, shapes, domain="normal", gradcheck=True):
    return pytest.param(name, fns[0], fns[1], shapes, domain, gradcheck, id=name)


IDX_REPEAT = np.array([0, 0, 2, 0])
IDX_2D = np.array([[0, 1], [1, 1], [3, 0]])
ROWS, COLS = np.array([0, 2, 0, 0]), np.array([1, 1, 1, 3])

CASES = [
    # ---- arithmetic, with broadcasting in every combination of sides -------------
    _case("add", _same(lambda a, b: a + b), [(3, 4), (3, 4)]),
    _case("add-bcast-middle", _same(lambda a, b: a + b), [(3, 1, 4), (2, 1)]),
    _case("add-bcast-lead", _same(lambda a, b: a + b), [(4,), (2, 3, 4)]),
    _case("add-0d", _same(lambda a, b: a + b), [(), (2, 3)]),
    _case("sub-bcast", _same(lambda a, b: a - b), [(2, 3), (3,)]),
    _case("sub-bcast-left", _same(lambda a, b: a - b), [(1, 3), (4, 2, 1)]),
    _case("mul", _same(lambda a, b: a * b), [(3, 4), (3, 4)]),
    _case("mul-bcast-both", _same(lambda a, b: a * b), [(2, 1, 3), (1, 4, 1)]),
    _case("mul-self", _same(lambda a: a * a), [(5,)]),
    _case("div", _same(lambda a, b: a / b), [(3, 4), (3, 4)], "pos"),
    _case("div-bcast", _same(lambda a, b: a / b), [(2, 3), (2, 1)], "pos"),
    _case("div-bcast-num", _same(lambda a, b: a / b), [(5,), (2, 3, 5)], "pos"),
    _case("neg", _same(lambda a: -a), [(3, 4)]),
    _case("pow-2", _same(lambda a: a ** 2), [(3, 4)]),
    _case("pow-3", _same(lambda a: a ** 3), [(3, 4)]),
    _case("pow-half", _same(lambda a: a ** 0.5), [(3, 4)], "pos"),
    _case("pow-neg-frac", _same(lambda a: a ** -1.5), [(3, 4)], "pos"),
    _case("pow-neg-int", _same(lambda a: a ** -2), [(3, 4)], "pos"),
    _case("pow-0-at-zero", _same(lambda a: a ** 0), [(3, 4)], "zeros", gradcheck=False),
    _case("pow-1-at-zero", _same(lambda a: a ** 1), [(3, 4)], "zeros"),
    _case("pow-2-at-zero", _same(lambda a: a ** 2), [(3, 4)], "zeros"),
    _case("matmul", _same(lambda a, b: a @ b), [(3, 4), (4, 5)]),
    _case("matmul-batched", _same(lambda a, b: a @ b), [(2, 3, 4), (2, 4, 5)]),
    _case("matmul-bcast-right", _same(lambda a, b: a @ b), [(2, 3, 4), (4, 5)]),
    _case("matmul-bcast-left", _same(lambda a, b: a @ b), [(3, 4), (2, 4, 5)]),
    _case("matmul-bcast-batch", _same(lambda a, b: a @ b), [(2, 1, 3, 4), (5, 4, 2)]),
    # ---- Python numbers on either side ---------------------------------------------
    _case("scalar-rmul", _same(lambda a: 0.5 * a), [(3, 4)]),
    _case("scalar-mul", _same(lambda a: a * 0.5), [(3, 4)]),
    _case("scalar-radd", _same(lambda a: 1 + a), [(3, 4)]),
    _case("scalar-add", _same(lambda a: a + 1.5), [(3, 4)]),
    _case("scalar-rsub", _same(lambda a: 2 - a), [(3, 4)]),
    _case("scalar-sub", _same(lambda a: a - 2.5), [(3, 4)]),
    _case("scalar-rdiv", _same(lambda a: 3 / a), [(3, 4)], "pos"),
    _case("scalar-div", _same(lambda a: a / 3), [(3, 4)]),
    # ---- indexing ------------------------------------------------------------------
    _case("getitem-int", _same(lambda a: a[1]), [(4, 3)]),
    _case("getitem-neg-int", _same(lambda a: a[-1, 2]), [(4, 3)]),
    _case("getitem-slice", _same(lambda a: a[1:3, ::2]), [(4, 5)]),
    _case("getitem-slice-step-3d", _same(lambda a: a[::2, 1:, :-1]), [(5, 3, 4)]),
    _case("getitem-slice-reverse", (lambda a: a[::-1], lambda t: torch.flip(t, (0,))), [(4, 3)]),
    _case("getitem-ellipsis", _same(lambda a: a[..., 1]), [(2, 3, 4)]),
    _case("getitem-newaxis", _same(lambda a: a[None, :, None]), [(3,)]),
    _case("getitem-fancy-repeated", _same(lambda a: a[IDX_REPEAT.tolist()]), [(4, 3)]),
    _case("getitem-fancy-array-repeated", (lambda a: a[IDX_REPEAT], lambda t: t[torch.from_numpy(IDX_REPEAT)]),
          [(4, 3)]),
    _case("getitem-fancy-2d", (lambda a: a[IDX_2D], lambda t: t[torch.from_numpy(IDX_2D)]), [(4, 3)]),
    _case("getitem-fancy-pairs-repeated",
          (lambda a: a[ROWS, COLS], lambda t: t[torch.from_numpy(ROWS), torch.from_numpy(COLS)]), [(3, 4)]),
    _case("getitem-fancy-after-slice", _same(lambda a: a[:, [1, 1, 0]]), [(3, 4)]),
    _case("getitem-tensor-index",
          (lambda a: a[Tensor(IDX_REPEAT)], lambda t: t[torch.from_numpy(IDX_REPEAT)]), [(4, 3)]),
    _case("getitem-tensor-in-tuple",
          (lambda a: a[Tensor(ROWS), 1:], lambda t: t[torch.from_numpy(ROWS), 1:]), [(3, 4)]),
    _case("getitem-bool-mask", (lambda a: a[a.data > 0], lambda t: t[t.detach() > 0]), [(4, 5)]),
    # ---- reductions ----------------------------------------------------------------
    *[_case(f"{name}-axis{axis}-keep{k}".replace(" ", ""), _reduce(name, axis, k), [(3, 4, 5)])
      for name in ("sum", "mean", "max")
      for axis in (None, 0, -1, (0, 2), (2, 1))
      for k in (False, True)],
    *[_case(f"max-ties-axis{axis}-keep{k}".replace(" ", ""), _reduce("max", axis, k), [(4, 3, 5)], "ties",
            gradcheck=False)
      for axis in (None, 1, (0, 2))
      for k in (False, True)],
    _case("max-all-equal", _reduce("max", None, False), [(2, 3)], "ties", gradcheck=False),
    _case("max-0d-result-1d", _reduce("max", 0, False), [(6,)]),
    # ---- shapes --------------------------------------------------------------------
    _case("reshape", _same(lambda a: a.reshape(6, 4)), [(2, 3, 4)]),
    _case("reshape-tuple-minus1", _same(lambda a: a.reshape((4, -1, 2))), [(2, 3, 4)]),
    _case("reshape-view-flat", _same(lambda a: a.view(-1)), [(2, 3, 4)]),
    _case("transpose-T", _same(lambda a: a.T), [(3, 5)]),
    _case("transpose-perm", (lambda a: a.transpose(1, 0, 2), lambda t: t.permute(1, 0, 2)), [(2, 3, 4)]),
    _case("transpose-tuple", (lambda a: a.transpose((2, 0, 1)), lambda t: t.permute(2, 0, 1)), [(2, 3, 4)]),
    _case("transpose-neg-axes", (lambda a: a.transpose(-1, 0, 1), lambda t: t.permute(-1, 0, 1)), [(2, 3, 4)]),
    _case("transpose-permute", _same(lambda a: a.permute(0, 2, 1)), [(2, 3, 4)]),
    _case("flatten-all", _same(lambda a: a.flatten()), [(2, 3, 4)]),
    _case("flatten-1", _same(lambda a: a.flatten(1)), [(2, 3, 4, 2)]),
    _case("flatten-1-2", _same(lambda a: a.flatten(1, 2)), [(2, 3, 4, 2)]),
    _case("flatten-neg", _same(lambda a: a.flatten(-3, -2)), [(2, 3, 4, 2)]),
    # ---- exp / log and compositions -------------------------------------------------
    _case("exp", _same(lambda a: a.exp()), [(3, 4)]),
    _case("log", _same(lambda a: a.log()), [(3, 4)], "pos"),
    _case("composite-softplus", _same(lambda a: (1 + a.exp()).log()), [(3, 4)]),
    _case("composite-mixed", _same(lambda a, b: ((a * b.exp()) / (1 + a ** 2)).sum(-1) - (a @ b.T).mean()),
          [(3, 4), (3, 4)]),
    _case("composite-reshape-matmul-max", (lambda x, w, b: (x.reshape(6, 4) @ w + b).max(axis=1).sum(),
                                  lambda x, w, b: torch.amax(x.reshape(6, 4) @ w + b, dim=1).sum()),
          [(2, 3, 4), (4, 5), (5,)]),
]


def _run(fn, tensors, upstream):
    out = fn(*tensors)
    out.backward(upstream)
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name, ours, ref, shapes, domain, check", CASES)
def test_torch_parity(name, ours, ref, shapes, domain, check, dtype):
    arrays = _inputs(shapes, domain, dtype, seed=len(shapes) * 7 + len(str(shapes)))
    xs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    probe = ref(*[t.detach() for t in ts])
    upstream = np.random.default_rng(1).standard_normal(tuple(probe.shape)).astype(dtype)
    out = _run(ours, xs, upstream)
    tout = ref(*ts)
    tout.backward(torch.tensor(upstream))
    tol = TOL[dtype]
    assert out.dtype == dtype, f"output dtype {out.dtype}, inputs {dtype}"
    errors = [rel_err(out.numpy(), tout.detach().numpy())]
    for i, (x, t) in enumerate(zip(xs, ts)):
        assert x.grad is not None, f"input {i} got no gradient"
        assert x.grad.dtype == dtype and x.grad.shape == x.shape
        errors.append(rel_err(x.grad, t.grad.numpy()))
    note(name, f"torch parity {np.dtype(dtype).name}", max(errors))
    assert max(errors) <= tol, f"relative errors (output, input grads...): {errors}"


@pytest.mark.parametrize("name, ours, ref, shapes, domain, check", [c for c in CASES if c.values[5]])
def test_gradcheck(name, ours, ref, shapes, domain, check):
    arrays = _inputs(shapes, domain, np.float64, seed=3)
    xs = [Tensor(a, requires_grad=True) for a in arrays]
    report = mt.gradcheck(ours, xs)
    note(name, "gradcheck float64", report.max_error)
    assert report.ok(GRADCHECK_TOL), str(report)


# ---- dtypes ------------------------------------------------------------------------

@pytest.mark.parametrize("expr", [
    lambda x: 0.5 * x, lambda x: x * 0.5, lambda x: x + 1, lambda x: 1 + x, lambda x: 2 - x, lambda x: x - 2.0,
    lambda x: x / 3, lambda x: 3.0 / x, lambda x: x ** 2, lambda x: x ** 0.5, lambda x: -x, lambda x: x.mean(),
    lambda x: x.mean(axis=0), lambda x: np.float64(0.5) * x, lambda x: x * np.float64(2.0),
    lambda x: x + np.float64(1.0), lambda x: x ** np.float64(2.0), lambda x: x / np.int64(3),
], ids=["rmul", "mul", "add-int", "radd-int", "rsub-int", "sub", "div-int", "rdiv", "pow-int", "pow-float",
        "neg", "mean", "mean-axis", "np64-rmul", "np64-mul", "np64-add", "np64-pow", "npint-div"])
def test_python_and_numpy_scalars_keep_float32(expr):
    x = Tensor(np.random.default_rng(0).uniform(0.5, 2, (3, 4)).astype(np.float32), requires_grad=True)
    y = expr(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_default_dtype_is_float32_and_arrays_keep_theirs():
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(3.0).dtype == np.float32
    assert mt.tensor([[1.5]]).dtype == np.float32
    assert Tensor(np.zeros(2)).dtype == np.float64
    assert Tensor(np.zeros(2, np.float32)).dtype == np.float32
    assert Tensor([1, 2]).dtype.kind == "i"
    assert Tensor([1.0], dtype=np.float64).dtype == np.float64


def test_float64_end_to_end():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(12, 4)).double()
    x = Tensor(rng.standard_normal((2, 2, 4, 4)), requires_grad=True)
    out = model(x)
    loss = F.cross_entropy(out, np.array([1, 3]))
    assert out.dtype == np.float64 and loss.dtype == np.float64
    loss.backward()
    assert x.grad.dtype == np.float64
    for name, p in model.named_parameters():
        assert p.dtype == np.float64 and p.grad.dtype == np.float64, name
    for name, b in model.named_buffers():
        assert b.dtype == (np.int64 if name.endswith("num_batches_tracked") else np.float64), name
    # and the same ops on plain float64 tensors
    a = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    y = ((a * 0.5 + 1) ** 2 / 3 - a.exp()).mean() + (a[0:1] @ a.T).sum()
    assert y.dtype == np.float64
    y.backward()
    assert a.grad.dtype == np.float64


def test_ndarray_on_the_left_gives_a_tensor():
    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    y = np.full(3, 2.0, np.float32) * x
    assert isinstance(y, Tensor) and y.requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])


def test_pow_rejects_tensor_exponent():
    with pytest.raises(TypeError, match="exponent"):
        Tensor([1.0]) ** Tensor([2.0])


def test_matmul_shape_errors():
    with pytest.raises(ValueError, match="inner dimensions"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 2)))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        Tensor(np.ones(3)) @ Tensor(np.ones((3, 2)))


# ---- no_grad -------------------------------------------------------------------------

def test_no_grad_records_no_graph():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with mt.no_grad():
        assert not mt.is_grad_enabled()
        y = (x * 2 + 1).exp().sum(axis=0)[1:]
        with mt.enable_grad():
            z = x * 3
    assert mt.is_grad_enabled()
    assert y.creator is None and not y.requires_grad and y.is_leaf
    assert z.creator is not None and z.requires_grad
    w = x * 2
    assert w.creator is not None and w.requires_grad


def test_no_grad_restores_state_after_an_exception():
    with pytest.raises(ZeroDivisionError), mt.no_grad():
        raise ZeroDivisionError
    assert mt.is_grad_enabled()


def test_constants_record_no_graph():
    a, b = Tensor(np.ones(3)), Tensor(np.ones(3))
    c = a * b + 1
    assert c.creator is None and not c.requires_grad


# ---- accumulation and graph shapes ----------------------------------------------------

def test_gradients_accumulate_across_backward_calls():
    x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data)
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 3)
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 3.0, 3.0])


def test_diamond_gets_the_summed_gradient():
    data = np.array([0.3, -1.2, 2.0])
    x = Tensor(data, requires_grad=True)
    a, b = x * 2, x.exp()
    (a * b).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * np.exp(data) + 2 * data * np.exp(data), rtol=1e-14)


def test_shared_intermediate_and_ladder_match_torch():
    """Each rung uses the previous one twice: a wrong topological order would drop gradient paths."""
    data = np.random.default_rng(0).standard_normal((3, 4)) * 0.1

    def ladder(x, h_exp):
        h = x
        for i in range(30):
            h = h * 0.5 + h_exp(h) * (0.01 * (i % 3)) - h * h * 0.1
        return (h + h * h).sum()

    x = Tensor(data, requires_grad=True)
    ladder(x, lambda h: h.exp()).backward()
    t = torch.tensor(data, requires_grad=True)
    ladder(t, lambda h: h.exp()).backward()
    assert rel_err(x.grad, t.grad.numpy()) <= 1e-10


def test_leaf_gradients_are_not_shared_arrays():
    """a + b hands both inputs the same upstream array; the leaves must still get their own ``.grad``."""
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    y = a + b
    y.backward(np.arange(3.0))
    a.grad *= 10  # in-place edits of one gradient (clipping, say) must not reach the other
    np.testing.assert_array_equal(b.grad, [0.0, 1.0, 2.0])
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    w = Tensor(np.ones(6), requires_grad=True)
    (x.reshape(6) + w).sum().backward()
    assert not np.shares_memory(x.grad, w.grad)


def test_deep_chain_has_no_recursion_error():
    depth = 5000
    assert depth > sys.getrecursionlimit()
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x
    for _ in range(depth):
        y = y * 1.0001 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0001 ** depth] * 2, rtol=1e-10)
    # a deep graph that is simply dropped (never back-propagated) is freed without a crash
    z = x
    for _ in range(depth):
        z = z + 1.0
    del z
    gc.collect()


def test_backward_of_leaf_itself():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    x.backward(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


def test_backward_non_scalar_without_grad_raises():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="scalar"):
        y.backward()
    y.backward(np.ones((2, 3)))
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 2.0))


def test_backward_accepts_a_one_element_non_0d_output():
    x = Tensor(np.array([2.0]), requires_grad=True)
    (x * x).backward()
    np.testing.assert_array_equal(x.grad, [4.0])


def test_only_requested_leaves_get_gradients():
    x = Tensor(np.ones(3), requires_grad=True)
    c = Tensor(np.ones(3))
    (x * c).sum().backward()
    assert c.grad is None and x.grad is not None


# ---- retain_grad -------------------------------------------------------------------

def test_retain_grad_on_non_leaf_matches_torch():
    data = np.random.default_rng(0).standard_normal((2, 3))
    x = Tensor(data, requires_grad=True)
    h = (x * 2).exp().retain_grad()
    k = x * 3                                   # a non-leaf that does not retain
    (h * h + h * k).sum().backward()
    t = torch.tensor(data, requires_grad=True)
    th = (t * 2).exp()
    th.retain_grad()
    (th * th + th * (t * 3)).sum().backward()
    assert rel_err(h.grad, th.grad.numpy()) <= 1e-12
    assert rel_err(x.grad, t.grad.numpy()) <= 1e-12
    assert k.grad is None


def test_retain_grad_on_the_root():
    x = Tensor(np.ones(3), requires_grad=True)
    y = (x * 2).retain_grad()
    y.backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(y.grad, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(x.grad, [2.0, 4.0, 6.0])


# ---- freeing the graph ---------------------------------------------------------------

def test_backward_releases_saved_arrays():
    x = Tensor(np.random.default_rng(0).standard_normal((300, 300)), requires_grad=True)
    h = x * 3.0                                  # a big intermediate, saved by the Mul below
    ref = weakref.ref(h.data)
    z = (h * h).sum()
    fns = [z.creator, z.creator.inputs[0].creator]
    del h
    gc.collect()
    assert ref() is not None, "the graph must hold the intermediate until backward"
    z.backward()
    gc.collect()
    assert ref() is None, "backward left the intermediate array alive"
    for fn in fns:
        assert set(vars(fn)) == {"released"}, f"{type(fn).__name__} still holds {sorted(vars(fn))}"


def test_second_backward_raises_unless_retain_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad, 4 * x.data)
    y.backward()
    np.testing.assert_array_equal(x.grad, 6 * x.data)
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()
    # a new graph that reuses a freed intermediate fails the same clear way
    h = x * 2
    (h * 1.0).sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        (h * 3.0).sum().backward()


def test_functions_record_only_when_needed():
    x = Tensor(np.ones(3), requires_grad=True)
    c = Tensor(np.ones(3))
    y = x * c
    assert y.creator.needs_input_grad == (True, False)
    assert [t is s for t, s in zip(y.creator.inputs, (x, c))] == [True, True]


def _small_net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Dropout(0.2), nn.Linear(8, 5))


def test_memory_is_flat_over_training_steps(monkeypatch):
    live = weakref.WeakSet()
    original_call = Function.__call__

    def tracked_call(self, *inputs):
        live.add(self)
        return original_call(self, *inputs)

    monkeypatch.setattr(Function, "__call__", tracked_call)
    mt.manual_seed(0)
    rng = np.random.default_rng(0)
    model = _small_net()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = rng.standard_normal((8, 3, 12, 12)).astype(np.float32)
    target = rng.integers(0, 5, 8)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(Tensor(x)), target)
        loss.backward()
        opt.step()
        return loss

    counts, current = [], []
    tracemalloc.start()
    try:
        for i in range(50):
            loss = step()
            # the loss still points at its (released) creator; nothing else of the graph survives
            counts.append(len(live))
            assert all(set(vars(fn)) == {"released"} for fn in live)
            del loss
            if i in (9, 49):
                gc.collect()
                current.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert max(counts) <= 1, counts
    assert len(live) == 0
    growth = current[1] - current[0]
    assert growth < 64 * 1024, f"traced memory grew by {growth} bytes between step 10 and step 50"
