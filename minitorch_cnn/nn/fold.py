"""Batch norm folded into the convolution before it, for inference, as inference engines do.

In eval mode a BatchNorm2d is a fixed per-channel affine map, y = x * s + t, with
s = gamma / sqrt(running_var + eps) and t = beta - running_mean * s. When it reads a convolution's
output and nothing else reads that output, the map folds into the convolution itself:

    W'[f] = W[f] * s[f],    b'[f] = b[f] * s[f] + t[f]     (b = 0 for a convolution without bias)

so the network makes one pass less over each such activation (two, with the array batch norm writes).

``fold_batch_norm(model, x)`` finds the pairs by running ``model(x)`` once (eval, ``no_grad``) and
watching which Function reads each convolution's output, and returns a ``Folding``. While it is active,
a folded pair runs as one convolution whenever the model is in eval mode under ``no_grad``; the modules
stay as they are, so training, ``state_dict``, hooks and the lab's Stepper (which records with gradients)
see the batch norm. A module with hooks runs unfolded, and its batch norm then normalises as usual.
The folded weights are a snapshot: ``Folding.remove()`` (or the end of its ``with`` block) ends it;
fold again after changing the weights or the running statistics.
"""
import weakref

import numpy as np

from ..config import Config
from ..device import get_array_module
from ..tensor import Tensor
from .layers import BatchNorm2d, Conv2d
from .trace import find_pairs


class Folding:
    """The active fold of one model: ``pairs`` [(conv name, batch-norm name)]; ``remove()`` undoes it.
    ``output``: the traced ``model(x)`` (unfolded), for a caller that would otherwise run x again."""

    def __init__(self, pairs, modules, output):
        self.pairs, self._modules, self.output = pairs, modules, output

    def remove(self):
        for m, replacement in self._modules:
            m.remove_replacement(replacement)
        self._modules = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def fold_batch_norm(model, x):
    """Fold every BatchNorm2d of ``model`` that only reads a Conv2d's output into that Conv2d (see the
    module docstring); ``x``: an input batch the model accepts, run once to find the pairs."""
    pairs, calls, output = find_pairs(model, x, Conv2d, BatchNorm2d)
    # the batch norm called once too (its running statistics are folded), and normalising with them in eval
    pairs = [(conv, bn) for conv, bn in pairs if calls[id(bn)] == 1 and bn.track_running_stats]
    names = {id(m): name for name, m in model.named_modules()}
    touched = []
    for conv, bn in pairs:
        weight, bias = _folded_weights(conv, bn)
        folded = _FoldedPair(conv, bn, weight, bias)
        conv.add_replacement(folded.conv)
        bn.add_replacement(folded.batch_norm)
        touched += [(conv, folded.conv), (bn, folded.batch_norm)]
    return Folding([(names.get(id(c)), names.get(id(b))) for c, b in pairs], touched, output)


class _FoldedPair:
    """What a folded (conv, batch norm) pair runs in place of their forwards (Module.__call__ asks; None:
    run forward), in eval mode under no_grad only.

    The batch norm passes through exactly the tensor the folded convolution last produced (held weakly),
    and normalises anything else as usual; the convolution runs unfolded while its batch norm has hooks
    (which would run its forward, and so normalise twice)."""

    def __init__(self, conv, bn, weight, bias):
        self.conv_module, self.bn_module, self.weight, self.bias = conv, bn, weight, bias
        self.last = None

    def conv(self, x):
        conv, bn = self.conv_module, self.bn_module
        if conv.training or bn.training or Config.grad_enabled or bn._forward_hooks or bn._forward_pre_hooks:
            return None
        y = conv.folded_forward(x, self.weight, self.bias)
        self.last = weakref.ref(y)
        return y

    def batch_norm(self, x):
        folded = self.last is not None and self.last() is x   # what the folded conv produced: normalised already
        return x if folded and not self.bn_module.training and not Config.grad_enabled else None


def _folded_weights(conv, bn):
    """(W', b') of a conv followed by a batch norm in eval mode, computed in float64, in the weight's dtype."""
    w = conv.weight.data
    xp, f = get_array_module(w), w.shape[0]
    one = lambda p, fill: xp.full(f, fill, np.float64) if p is None else p.data.astype(np.float64)  # noqa: E731
    scale = one(bn.weight, 1.0) / xp.sqrt(bn.running_var.astype(np.float64) + bn.eps)
    shift = one(bn.bias, 0.0) - bn.running_mean.astype(np.float64) * scale
    bias = one(conv.bias, 0.0) * scale + shift
    folded = w.astype(np.float64) * scale.reshape(f, 1, 1, 1)
    return Tensor(folded.astype(w.dtype)), Tensor(bias.astype(w.dtype))
