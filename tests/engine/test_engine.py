"""The Tensor operators against PyTorch and against finite differences.

Every operator case runs the same computation in both frameworks on identical
inputs, back-propagates the same random upstream gradient, and compares the
output and every input gradient (relative error max|a-b| / max|b|): float64 to
1e-10, float32 to 1e-5. The same case then goes through ``minitorch_cnn.gradcheck``
(float64 five-point differences, worst CS231n relative error <= 1e-6).

The engine's behaviour rather than its arithmetic (dtypes, no_grad, graph shapes,
freeing the graph, memory) is tested in test_autograd.py.
"""
import numpy as np
import pytest
import torch
from support import numerics as helpers
from support.numerics import rel_err

import minitorch_cnn as mt
from minitorch_cnn import Tensor

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
