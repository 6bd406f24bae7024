"""backward() hands a leaf the gradient array its Function returned, without a copy, only when nobody else
holds that array (autograd._alone): a kept array, one handed to two inputs, or a view of either is copied,
so that every ``.grad`` stays its own to edit in place."""
import sys

import numpy as np

import minitorch_cnn as mt
from minitorch_cnn.autograd import Function

linear_module = sys.modules["minitorch_cnn.functional.linear"]


class Returns(Function):
    """x -> 2x; backward returns what ``make(self, gy)`` gives."""
    def __init__(self, make):
        self.make = make

    def forward(self, x):
        self.kept = np.full(x.shape, 7.0)
        return 2 * x

    def backward(self, gy):
        return self.make(self, gy)


def test_a_fresh_gradient_is_taken_without_a_copy(monkeypatch):
    returned = []
    backward = linear_module.Linear.backward

    def recording(self, gy):
        out = backward(self, gy)
        returned.append([id(a) for a in out])   # ids only: a reference here would count as another holder
        return out
    monkeypatch.setattr(linear_module.Linear, "backward", recording)
    x, w, b = (mt.Tensor(np.ones(s), requires_grad=True) for s in ((4, 3), (2, 3), (2,)))
    linear_module.linear(x, w, b).sum().backward()
    assert [id(x.grad), id(w.grad), id(b.grad)] == returned[0]


def test_held_or_shared_gradients_are_copied():
    kept = []

    def kept_array(self, gy):                                      # the Function keeps the array it returns
        kept.append(self.kept)
        return self.kept
    x = mt.Tensor(np.ones(3), requires_grad=True)
    Returns(kept_array)(x).sum().backward()
    x.grad[0] = -1.0
    assert x.grad[1] == 7.0 and kept[0][0] == 7.0
    kept_view = []

    def view_of_kept(self, gy):
        kept_view.append(self.kept)
        return self.kept[::1]
    y = mt.Tensor(np.ones(3), requires_grad=True)
    Returns(view_of_kept)(y).sum().backward()
    y.grad[0] = -1.0
    assert kept_view[0][0] == 7.0
    a, c = mt.Tensor(np.ones(3), requires_grad=True), mt.Tensor(np.ones(3), requires_grad=True)
    (a + c).sum().backward()                                       # Add hands one array to both inputs
    assert not np.shares_memory(a.grad, c.grad)
    d = mt.Tensor(np.ones(3), requires_grad=True)
    (d + d).sum().backward()
    assert np.array_equal(d.grad, [2.0, 2.0, 2.0])


def test_a_view_of_a_read_only_buffer_is_copied():
    x = mt.Tensor(np.ones(3), requires_grad=True)
    Returns(lambda self, gy: np.frombuffer(np.full(3, 5.0).tobytes()))(x).sum().backward()   # base: bytes
    x.grad[0] = 1.0                     # its own writeable array
    assert np.array_equal(x.grad, [1.0, 5.0, 5.0])


def test_a_second_backward_adds_into_an_owned_gradient_in_place_and_leaves_a_held_one_alone():
    x = mt.Tensor(np.arange(4.0), requires_grad=True)
    (x * 2).sum().backward()
    first = id(x.grad)
    (x * 3).sum().backward()
    assert id(x.grad) == first and np.array_equal(x.grad, np.full(4, 5.0))   # nobody else held it: in place
    held = x.grad                                                           # now someone does
    (x * 4).sum().backward()
    assert x.grad is not held and np.array_equal(x.grad, np.full(4, 9.0))
    assert np.array_equal(held, np.full(4, 5.0))                             # what the caller holds stays


def test_fan_out_gradients_sum_correctly_whether_or_not_they_are_shared():
    """A tensor read three times (the sums go through the pending slot, in place when the slot's array is its
    own), including twice by one Add, which hands the same array to both inputs."""
    x = mt.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x * 1.5                       # not a leaf: its gradient is summed in backward's pending slot
    out = (y + y) * 2 + y * y
    out.sum().backward()
    np.testing.assert_allclose(x.grad, 1.5 * (4 + 2 * (x.data * 1.5)))
    a = mt.Tensor(np.ones(3), requires_grad=True)
    b = a * 1.0
    (b + b + b).sum().backward()
    np.testing.assert_array_equal(a.grad, np.full(3, 3.0))
