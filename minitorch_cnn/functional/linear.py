"""Fully connected layer: y = x W^T + b."""
from ..autograd import Function
from ..tensor import as_tensor
from .checks import with_bias_grad


class Linear(Function):
    """x: (*, in), W: (out, in), b: (out,) -> (*, out); dx = gy W, dW = gy^T x, db = sum gy."""
    def forward(self, x, w, b=None):
        self.x, self.w = x, w
        y = x @ w.T
        if b is not None:
            y += b
        return y

    def backward(self, gy):
        gx = gy @ self.w if self.needs_input_grad[0] else None
        gw = None
        if self.needs_input_grad[1]:
            gy2, x2 = gy.reshape(-1, gy.shape[-1]), self.x.reshape(-1, self.x.shape[-1])
            gw = gy2.T @ x2
        return with_bias_grad(self, (gx, gw), gy, bias_axis=-1)


def linear(x, weight, bias=None):
    """Like ``torch.nn.functional.linear``: (*, in) -> (*, out)."""
    x, weight = as_tensor(x), as_tensor(weight)
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be (out_features, in_features), got {tuple(weight.shape)}")
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: weight {tuple(weight.shape)} expects input (*, {weight.shape[1]}), "
                         f"got {tuple(x.shape)}")
    if bias is None:
        return Linear()(x, weight)
    bias = as_tensor(bias)
    if tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    return Linear()(x, weight, bias)
