"""Arithmetic, reductions and reshapes: the Functions behind Tensor's operators.

Each class is one op: ``forward`` on raw arrays, ``backward`` right below it
with the local derivative. Broadcasting in a forward means summing in the
backward: ``unbroadcast`` reduces a gradient back to its input's shape.
"""
import numbers

from ..autograd import Function
from ..device import get_array_module
from ..tensor import Tensor, as_tensor


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched, to get ``shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(i + extra for i, n in enumerate(shape) if n == 1 and grad.shape[i + extra] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


class Add(Function):
    """y = a + b (broadcast) -> dy/da = 1, dy/db = 1."""
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, gy):
        return unbroadcast(gy, self.shapes[0]), unbroadcast(gy, self.shapes[1])


class Sub(Function):
    """y = a - b -> dy/da = 1, dy/db = -1."""
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, gy):
        return unbroadcast(gy, self.shapes[0]), unbroadcast(-gy, self.shapes[1])


class Mul(Function):
    """y = a * b -> dy/da = b, dy/db = a."""
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        ga = unbroadcast(gy * self.b, self.a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(gy * self.a, self.b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    """y = a / b -> dy/da = 1/b, dy/db = -a/b^2."""
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, gy):
        ga = unbroadcast(gy / self.b, self.a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(-gy * self.a / (self.b * self.b), self.b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    """y = -x -> dy/dx = -1."""
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Pow(Function):
    """y = x^p for a constant p -> dy/dx = p x^(p-1)."""
    def __init__(self, p):
        self.p = p

    def forward(self, x):
        self.x = x
        return x ** self.p

    def backward(self, gy):
        if self.p == 0:  # y = 1 is constant; p * x^(p-1) would give 0 * inf = nan at x = 0
            return get_array_module(gy).zeros_like(gy)
        return gy * self.p * self.x ** (self.p - 1)


class Exp(Function):
    """y = e^x -> dy/dx = y."""
    def forward(self, x):
        self.y = get_array_module(x).exp(x)
        return self.y

    def backward(self, gy):
        return gy * self.y


class Log(Function):
    """y = ln x -> dy/dx = 1/x."""
    def forward(self, x):
        self.x = x
        return get_array_module(x).log(x)

    def backward(self, gy):
        return gy / self.x


class MatMul(Function):
    """(..., m, k) @ (..., k, n) -> (..., m, n); dA = dY @ B^T, dB = A^T @ dY."""
    def forward(self, a, b):
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"matmul: both operands need at least 2 dimensions, got {a.shape} and {b.shape}")
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: inner dimensions differ, {a.shape} @ {b.shape}")
        self.a, self.b = a, b
        return a @ b

    def backward(self, gy):
        ga = unbroadcast(gy @ self.b.swapaxes(-1, -2), self.a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(self.a.swapaxes(-1, -2) @ gy, self.b.shape) if self.needs_input_grad[1] else None
        return ga, gb


def _expand_reduced(gy, shape, axis, keepdims):
    """Reinsert the reduced axes of ``gy`` as size 1 so it broadcasts against the input."""
    if axis is None or keepdims:
        return gy.reshape([1] * len(shape)) if axis is None and not keepdims else gy
    axes = (axis,) if isinstance(axis, int) else axis
    out_shape = list(shape)
    for a in axes:
        out_shape[a % len(shape)] = 1
    return gy.reshape(out_shape)


class Sum(Function):
    """y = sum of x over ``axis`` -> dy/dx = 1 (the gradient is copied to every summed element)."""
    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.shape = x.shape
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        xp = get_array_module(gy)
        return xp.broadcast_to(_expand_reduced(gy, self.shape, self.axis, self.keepdims), self.shape).copy()


class Max(Function):
    """y = max of x over ``axis`` -> dy/dx = 1 at the maximum (split evenly between ties, like torch.amax)."""
    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.x = x
        self.y = x.max(axis=self.axis, keepdims=True)
        return self.y if self.keepdims else self.y.reshape(x.max(axis=self.axis).shape)

    def backward(self, gy):
        mask = (self.x == self.y)
        # an integer count would promote a float32 gradient to float64
        count = mask.sum(axis=self.axis, keepdims=True).astype(gy.dtype)
        return mask * (_expand_reduced(gy, self.x.shape, self.axis, self.keepdims) / count)


class Reshape(Function):
    """x: any shape -> ``shape`` (same elements); the gradient is reshaped back."""
    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.in_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return gy.reshape(self.in_shape)


class Transpose(Function):
    """Permute axes; the gradient is permuted back with the inverse permutation."""
    def __init__(self, axes=None):
        self.axes = axes

    def forward(self, x):
        self.axes = tuple(self.axes) if self.axes is not None else tuple(range(x.ndim))[::-1]
        return x.transpose(self.axes)

    def backward(self, gy):
        inverse = [0] * len(self.axes)
        for i, a in enumerate(self.axes):
            inverse[a] = i
        return gy.transpose(inverse)


class GetItem(Function):
    """y = x[index] -> the gradient is scattered back (added, so repeated indices accumulate)."""
    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.shape, self.dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.shape, self.dtype)
        xp.add.at(gx, self.index, gy)
        return gx


# ---- the functional API used by Tensor's operators -------------------------
def _pair(a, b):
    """Wrap both operands as Tensors; a Python number takes the other operand's dtype."""
    ta = a if isinstance(a, Tensor) else as_tensor(a, like=b if isinstance(b, Tensor) else None)
    tb = b if isinstance(b, Tensor) else as_tensor(b, like=ta)
    return ta, tb


def add(a, b):
    return Add()(*_pair(a, b))


def sub(a, b):
    return Sub()(*_pair(a, b))


def mul(a, b):
    return Mul()(*_pair(a, b))


def div(a, b):
    return Div()(*_pair(a, b))


def neg(x):
    return Neg()(x)


def pow(x, p):
    if not isinstance(p, numbers.Number):
        raise TypeError(f"pow: the exponent must be a Python number, got {type(p).__name__}")
    # a NumPy float64 exponent would promote float32 data to float64; a Python number does not
    return Pow(p.item() if hasattr(p, "item") else p)(x)


def exp(x):
    return Exp()(x)


def log(x):
    return Log()(x)


def matmul(a, b):
    return MatMul()(*_pair(a, b))


def sum(x, axis=None, keepdims=False):
    return Sum(axis, keepdims)(x)


def mean(x, axis=None, keepdims=False):
    x = as_tensor(x)
    axes = range(x.ndim) if axis is None else ((axis,) if isinstance(axis, int) else axis)
    count = 1
    for a in axes:
        count *= x.shape[a]
    return Sum(axis, keepdims)(x) * (1.0 / count)


def max(x, axis=None, keepdims=False):
    return Max(axis, keepdims)(x)


def reshape(x, shape):
    return Reshape(shape)(x)


def transpose(x, axes=None):
    return Transpose(axes)(x)


def getitem(x, index):
    # Tensors used as indices, alone or inside a tuple (x[rows, cols]), index by their arrays
    if isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    elif isinstance(index, Tensor):
        index = index.data
    return GetItem(index)(x)
