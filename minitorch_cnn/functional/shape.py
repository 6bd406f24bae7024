"""Shape operations: flatten and concatenation."""
import itertools

from ..autograd import Function
from ..device import get_array_module
from ..tensor import as_tensor
from .tensor_ops import reshape


def flatten(x, start_dim=0, end_dim=-1):
    """Like ``torch.flatten``: merge dims start_dim..end_dim into one, e.g. (N, C, H, W) -> (N, C*H*W)."""
    x = as_tensor(x)
    nd = max(x.ndim, 1)
    start, end = start_dim % nd, end_dim % nd
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {tuple(x.shape)}")
    merged = 1
    for n in x.shape[start:end + 1]:
        merged *= n
    return reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1:])


class Cat(Function):
    """Joins inputs along ``dim``; the gradient is cut back into the same pieces."""
    def __init__(self, dim):
        self.dim = dim

    def forward(self, *xs):
        self.sizes = [x.shape[self.dim] for x in xs]
        return get_array_module(*xs).concatenate(xs, axis=self.dim)

    def backward(self, gy):
        bounds = list(itertools.accumulate(self.sizes[:-1]))   # where each input's slice ends
        return tuple(get_array_module(gy).split(gy, bounds, axis=self.dim))


def cat(tensors, dim=0):
    """Like ``torch.cat``: all inputs share every dimension except ``dim``."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    first = tensors[0]
    if not -first.ndim <= dim < first.ndim:
        raise ValueError(f"cat: dim {dim} is out of range for tensors of {first.ndim} dimensions")
    d = dim % first.ndim
    for i, t in enumerate(tensors[1:], 1):
        if t.ndim != first.ndim or t.shape[:d] + t.shape[d + 1:] != first.shape[:d] + first.shape[d + 1:]:
            raise ValueError(f"cat: tensor {i} has shape {tuple(t.shape)}, which does not match tensor 0's "
                             f"{tuple(first.shape)} outside dim {dim}")
        if t.dtype != first.dtype:
            raise TypeError(f"cat: tensor {i} has dtype {t.dtype}, tensor 0 has {first.dtype}")
    return Cat(d)(*tensors)
