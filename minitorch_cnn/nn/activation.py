"""Activation and dropout layers: parameter-free Modules around ``functional``."""
from .. import functional as F
from .module import Module


class _Elementwise(Module):
    function = None

    def __init__(self, inplace=False):  # inplace is accepted for PyTorch compatibility; results are never in place
        super().__init__()

    def forward(self, x):
        return type(self).function(x)


class ReLU(_Elementwise):
    function = staticmethod(F.relu)


class ReLU6(_Elementwise):
    function = staticmethod(F.relu6)


# The clamping activations, by the name ``F.batch_norm(..., activation=)`` takes (its ACTIVATIONS give their
# bounds): nn/fuse.py and nn/fold.py fuse exactly these classes (a subclass may change forward).
CLAMPS = {ReLU: "relu", ReLU6: "relu6"}


class Sigmoid(_Elementwise):
    function = staticmethod(F.sigmoid)


class Tanh(_Elementwise):
    function = staticmethod(F.tanh)


class Softmax(Module):
    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)


class Dropout(Module):
    """Zeroes elements with probability p while training (scaling the rest by 1/(1-p)); identity in eval."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"
