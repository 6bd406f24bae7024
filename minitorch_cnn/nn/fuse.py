"""Batch norm and the ReLU (or ReLU6) after it run as one Function in training, as fused kernels do.

Run one after the other, a batch norm writes y and the activation reads it and writes z = clamp(y); the
backward reads dz and z and writes dy, which batch norm's backward reads with x. As one Function
(functional/norm.py, ``batch_norm(..., activation=)``) the forward writes z straight away and the backward
reads dz, z (for the mask 0 < z < high) and x in one kernel: no y, no dy, one pass less each way.

``fuse_batch_norm_activation(model, x)`` finds the pairs by running ``model(x)`` once (eval, ``no_grad``: no
running statistic or random state changes; nn/trace.py), a pair being a batch norm whose output only a
ReLU or ReLU6 module reads, and returns a ``Fusion``. While it is active, a pair runs as one Function
whenever the batch norm is in training mode; in eval mode (nn/fold.py's domain) both run as usual. The
modules stay as they are, so ``state_dict``, optimizers and checkpoints see no difference, and a module
with hooks (the lab's Stepper, attribution maps, a user's) runs unfused, so every layer's output is seen.
Nothing is a snapshot: the fusion stays right while the weights train; ``Fusion.remove()`` (or the end of
its ``with`` block) ends it.
"""
import weakref

from ..tensor import Tensor
from .activation import CLAMPS
from .layers import _BatchNorm
from .trace import Replaced, find_pairs


class Fusion(Replaced):
    """The active fusion of one model: ``pairs`` [(batch-norm name, activation name)]; ``remove()`` undoes it."""

    def __init__(self, pairs, installed):
        super().__init__(installed)
        self.pairs = pairs


def fuse_batch_norm_activation(model, x):
    """Run each batch norm of ``model`` whose output only a ReLU or ReLU6 reads as one Function with it, in
    training (see the module docstring); ``x``: an input batch the model accepts, whose first image is run
    once to find the pairs (which modules read which does not depend on the batch size, and one image costs
    1/N of the batch: GoogLeNet's first training step at batch 64, 2 cores, 9.6 -> 8.2 s)."""
    kinds = {type(m) for m in model.modules()}
    if not any(issubclass(k, _BatchNorm) for k in kinds) or not kinds & set(CLAMPS):
        return Fusion([], [])   # nothing to pair: no traced forward (a model may count its calls)
    first_image = (x.data if isinstance(x, Tensor) else x)[:1]
    pairs, _, _ = find_pairs(model, first_image, _BatchNorm, tuple(CLAMPS))
    pairs = [(bn, act) for bn, act in pairs if type(act) in CLAMPS]
    names = {id(m): name for name, m in model.named_modules()}
    touched = []
    for bn, act in pairs:
        fused = _FusedPair(bn, act)
        bn.add_replacement(fused.batch_norm)
        act.add_replacement(fused.activation)
        touched += [(bn, fused.batch_norm), (act, fused.activation)]
    return Fusion([(names.get(id(b)), names.get(id(a))) for b, a in pairs], touched)


class _FusedPair:
    """What a fused (batch norm, activation) pair runs in place of their forwards (Module.__call__ asks; None:
    run forward).

    The batch norm normalises and clamps; the activation then passes through exactly the tensor the fused
    batch norm last produced (held weakly), and clamps anything else as usual (a ReLU module may be called
    more than once: ResNet's blocks call theirs after bn1 and after the residual sum). The batch norm runs
    unfused while its activation has hooks (they would not see the activation's input)."""

    def __init__(self, bn, act):
        self.bn_module, self.act_module, self.activation_name = bn, act, CLAMPS[type(act)]
        self.last = None

    def batch_norm(self, x):
        act = self.act_module
        if not self.bn_module.training or act._has_hooks():
            return None
        z = self.bn_module.forward(x, activation=self.activation_name)
        self.last = weakref.ref(z)
        return z

    def activation(self, x):
        return x if self.last is not None and self.last() is x else None
