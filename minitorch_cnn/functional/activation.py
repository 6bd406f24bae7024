"""Element-wise activations and (log-)softmax: each forward with its local derivative."""
from ..autograd import Function
from ..device import get_array_module, kernels
from ..tensor import as_tensor


class ReLU(Function):
    """y = max(x, 0) -> dy/dx = 1 where x > 0, else 0 (so 0 at x = 0, as in PyTorch)."""
    high = None

    def forward(self, x):
        # The output, not the mask, is saved: y > 0 exactly where x > 0, and y is the next layer's input,
        # which the graph holds anyway. So the forward computes no mask (clamp, not clamp_forward).
        self.y = kernels(x).clamp(x, self.high)
        return self.y

    def backward(self, gy):
        return kernels(gy).clamp_backward(gy, self.y, self.high)


class ReLU6(ReLU):
    """y = min(max(x, 0), 6) -> dy/dx = 1 where 0 < x < 6, else 0 (PyTorch's hardtanh convention)."""
    high = 6.0


class Sigmoid(Function):
    """y = 1 / (1 + e^-x) -> dy/dx = y (1 - y)."""
    def forward(self, x):
        xp = get_array_module(x)
        # tanh form: no overflow for large |x|, unlike 1 / (1 + exp(-x))
        self.y = 0.5 * (xp.tanh(0.5 * x) + 1)
        return self.y

    def backward(self, gy):
        return gy * self.y * (1 - self.y)


class Tanh(Function):
    """y = tanh x -> dy/dx = 1 - y^2."""
    def forward(self, x):
        self.y = get_array_module(x).tanh(x)
        return self.y

    def backward(self, gy):
        return gy * (1 - self.y * self.y)


def log_softmax_array(x, dim):
    """Raw-array log-softmax, stable: subtract the max before exponentiating so nothing overflows."""
    xp = get_array_module(x)
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))


class Softmax(Function):
    """y = e^x / sum e^x along ``dim`` -> dx = y * (gy - sum(gy * y))."""
    def __init__(self, dim):
        self.dim = dim

    def forward(self, x):
        self.y = get_array_module(x).exp(log_softmax_array(x, self.dim))
        return self.y

    def backward(self, gy):
        return self.y * (gy - (gy * self.y).sum(axis=self.dim, keepdims=True))


class LogSoftmax(Function):
    """y = x - log sum e^x along ``dim`` -> dx = gy - softmax(x) * sum(gy)."""
    def __init__(self, dim):
        self.dim = dim

    def forward(self, x):
        self.y = log_softmax_array(x, self.dim)
        return self.y

    def backward(self, gy):
        xp = get_array_module(gy)
        return gy - xp.exp(self.y) * gy.sum(axis=self.dim, keepdims=True)


def relu(x):
    return ReLU()(x)


def relu6(x):
    return ReLU6()(x)


def sigmoid(x):
    return Sigmoid()(x)


def tanh(x):
    return Tanh()(x)


def _check_dim(x, dim, name):
    x = as_tensor(x)
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(f"{name}: dim {dim} is out of range for input of shape {tuple(x.shape)}")
    return x


def softmax(x, dim=-1):
    return Softmax(dim)(_check_dim(x, dim, "softmax"))


def log_softmax(x, dim=-1):
    return LogSoftmax(dim)(_check_dim(x, dim, "log_softmax"))
