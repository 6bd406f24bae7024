"""Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p),
so the expected activation is unchanged and evaluation needs no rescaling."""
from ..autograd import Function
from ..random import uniform
from ..tensor import as_tensor


class Dropout(Function):
    """x: any shape -> x * mask / (1 - p); the same mask scales the gradient."""
    def __init__(self, p):
        self.p = p

    def forward(self, x):
        keep = uniform(x.shape, like=x) >= self.p
        self.scale = keep * x.dtype.type(1.0 / (1.0 - self.p))
        return x * self.scale

    def backward(self, gy):
        return gy * self.scale


def dropout(x, p=0.5, training=True):
    """Like ``torch.nn.functional.dropout``; the identity when not training or p == 0."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p must be in [0, 1], got {p}")
    x = as_tensor(x)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return Dropout(p)(x)
