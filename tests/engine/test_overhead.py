"""The hot path made cheap without changing results: Conv2d's kept columns, skipped input gradients,
grad mode seen by forwards, max pooling's NaN rule, and the device check's fast path.

Speed itself is judged by the benchmarks (benchmarks.models, benchmarks.profile); these tests pin what
the shortcuts must not change.
"""
import numpy as np
import pytest

import minitorch_cnn as mt
from minitorch_cnn import functional as F
from minitorch_cnn import workspace
from minitorch_cnn.device import check_same_device, is_array
from minitorch_cnn.functional.conv import Conv2d
from minitorch_cnn.kernels import cpu, reference


def _count_calls(monkeypatch, name):
    """A list that grows by one at each call of ``cpu.<name>`` (which still runs)."""
    calls, original = [], getattr(cpu, name)
    monkeypatch.setattr(cpu, name, lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


def _two_conv_grads(monkeypatch, keep_bytes):
    """Gradients of a two-layer im2col network (5x5 convs: not Winograd) with a given keep budget."""
    monkeypatch.setattr(workspace, "KEEP_BYTES", keep_bytes)
    rng = np.random.default_rng(0)
    x = mt.Tensor(rng.standard_normal((3, 2, 12, 11)), requires_grad=True)
    w1 = mt.Tensor(rng.standard_normal((4, 2, 5, 5)), requires_grad=True)
    b1 = mt.Tensor(rng.standard_normal(4), requires_grad=True)
    w2 = mt.Tensor(rng.standard_normal((6, 2, 5, 5)), requires_grad=True)   # groups 2
    y = F.conv2d(F.relu(F.conv2d(x, w1, b1, padding=1)), w2, stride=(2, 1), groups=2)
    assert type(y.creator).__name__ == "Conv2d"
    (y * y).sum().backward()
    return [t.grad for t in (x, w1, b1, w2)]


def test_kept_columns_give_the_rebuilt_gradients(monkeypatch):
    # both layers keep their columns (budget large) or both rebuild them (budget -1): the same numbers.
    # A kept matrix that still lived in the shared workspace would be overwritten by the second layer.
    kept, rebuilt = _two_conv_grads(monkeypatch, 1 << 30), _two_conv_grads(monkeypatch, -1)
    for a, b in zip(kept, rebuilt):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_kept_columns_are_not_rebuilt_and_freed_in_backward(monkeypatch):
    calls = _count_calls(monkeypatch, "im2col")
    rng = np.random.default_rng(1)
    x = mt.Tensor(rng.standard_normal((2, 3, 9, 9)).astype(np.float32))
    w = mt.Tensor(rng.standard_normal((4, 3, 5, 5)).astype(np.float32), requires_grad=True)
    y = F.conv2d(x, w)
    fn = y.creator
    assert fn.kept_cols is not None and len(calls) == 1
    y.sum().backward(retain_graph=True)
    assert len(calls) == 1, "backward rebuilt columns it had kept"
    assert fn.kept_cols is None, "the kept columns outlive the backward that needed them"
    monkeypatch.setattr(workspace, "KEEP_BYTES", 0)
    F.conv2d(x, w).sum().backward()
    assert len(calls) == 3, "over the budget, the columns are rebuilt in backward"


def test_the_keep_budget_is_shared_and_given_back(monkeypatch):
    rng = np.random.default_rng(5)
    x = mt.Tensor(rng.standard_normal((2, 3, 9, 9)).astype(np.float32))
    w = mt.Tensor(rng.standard_normal((4, 3, 5, 5)).astype(np.float32), requires_grad=True)
    one = 3 * 25 * 2 * 25 * 4                                   # bytes of one layer's columns
    before = workspace.kept_bytes()
    monkeypatch.setattr(workspace, "KEEP_BYTES", before + one)  # room for one layer's columns, not two
    y1, y2 = F.conv2d(x, w), F.conv2d(x, w)
    assert y1.creator.kept_cols is not None and y2.creator.kept_cols is None
    assert workspace.kept_bytes() == before + one
    (y1 + y2).sum().backward()
    assert workspace.kept_bytes() == before, "backward did not give the budget back"
    y3 = F.conv2d(x, w)
    assert y3.creator.kept_cols is not None and workspace.kept_bytes() == before + one
    del y3                                                      # a graph dropped without a backward
    assert workspace.kept_bytes() == before, "an abandoned graph keeps the budget"


def test_no_grad_forward_keeps_nothing_and_sees_no_grad_needed():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = mt.Tensor(rng.standard_normal((4, 3, 5, 5)).astype(np.float32), requires_grad=True)
    fn = Conv2d((1, 1), (0, 0), (1, 1), 1, (4, 4))
    with mt.no_grad():
        y = fn(mt.Tensor(x), w)
    assert fn.needs_input_grad == (False, False) and fn.kept_cols is None and y.creator is None
    fn = Conv2d((1, 1), (0, 0), (1, 1), 1, (4, 4))
    fn(mt.Tensor(x), w)
    assert fn.needs_input_grad == (False, True) and fn.kept_cols is not None


def test_an_input_without_grad_gets_no_col2im(monkeypatch):
    # LeNet's first layer: the image needs no gradient, so backward must not pay dcols and col2im
    calls = _count_calls(monkeypatch, "col2im")
    rng = np.random.default_rng(3)
    x = mt.Tensor(rng.standard_normal((2, 1, 10, 10)).astype(np.float32))
    w = mt.Tensor(rng.standard_normal((6, 1, 5, 5)).astype(np.float32), requires_grad=True)
    F.conv2d(x, w).sum().backward()
    assert calls == [] and x.grad is None and w.grad is not None
    x.requires_grad = True
    F.conv2d(x, w).sum().backward()
    assert calls == [1] and x.grad is not None


@pytest.mark.parametrize("kernel,stride,padding", [((3, 3), (1, 1), (1, 1)), ((2, 2), (2, 2), (0, 0)),
                                                   ((3, 2), (2, 1), (1, 1))])
def test_max_pool_nan_and_ties_pick_the_first_like_the_reference(kernel, stride, padding):
    # Several NaNs, -inf and ties per window: the Numba kernel (both its unit-stride and strided loops)
    # must pick the tap NumPy's argmax picks: the first maximum, a NaN before any number.
    rng = np.random.default_rng(4)
    x = rng.integers(-2, 2, (2, 3, 9, 8)).astype(np.float32)
    x[rng.random(x.shape) < 0.15] = np.nan
    x[rng.random(x.shape) < 0.1] = -np.inf
    out_hw = tuple((x.shape[2 + a] + 2 * padding[a] - kernel[a]) // stride[a] + 1 for a in range(2))
    y, arg = cpu.max_pool_forward(x, kernel, stride, padding, out_hw)
    ry, rarg = reference.max_pool_forward(x, kernel, stride, padding, out_hw)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(arg, rarg)


def test_device_check_fast_path_still_lets_host_arrays_through():
    class Sub(np.ndarray):
        pass
    plain = np.zeros(3)
    check_same_device([plain, plain.view(Sub)], "Add")   # a subclass takes the full check: no error
    check_same_device([plain, plain], "Add")
    assert is_array(plain) and is_array(plain.view(Sub)) and not is_array([1.0])
