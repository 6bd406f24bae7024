"""The autograd engine's behaviour rather than its arithmetic (the operators' arithmetic: test_engine.py).

Dtypes, no_grad, accumulation, graph shapes (diamonds, deep chains), freeing the graph,
retain_graph / retain_grad, and memory staying flat over many training steps.
"""
import gc
import sys
import tracemalloc
import weakref

import numpy as np
import pytest
import torch
from support.numerics import rel_err

import minitorch_cnn as mt
from minitorch_cnn import Function, Tensor, nn, optim
from minitorch_cnn import functional as F

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
