"""Softmax cross-entropy with integer class targets and optional label smoothing.

With p = softmax(z) and the smoothed target q = (1 - eps) * onehot(t) + eps / K,
loss = -sum_k q_k log p_k, and its gradient is simply dloss/dz = p - q.
"""
import numpy as np

from ..autograd import Function
from ..device import get_array_module, is_array, kernels
from ..tensor import Tensor, as_tensor
from .activation import log_softmax_array


class CrossEntropy(Function):
    """logits (N, K), target (N,) ints -> loss: scalar ('mean', 'sum') or (N,) ('none')."""
    def __init__(self, target, label_smoothing, reduction):
        self.target, self.eps, self.reduction = target, label_smoothing, reduction

    def forward(self, z):
        xp = get_array_module(z)
        n, k = z.shape
        fused = getattr(kernels(z), "cross_entropy_forward", None)
        if fused is not None:   # a GPU: the losses and the gradient (scaled for the reduction) in one launch
            per_sample, self.grad = fused(z, self.target, self.eps, 1.0 / n if self.reduction == "mean" else 1.0)
            if self.reduction == "none":
                return per_sample
            return per_sample.mean() if self.reduction == "mean" else per_sample.sum()
        self.grad = None
        self.log_p = log_softmax_array(z, 1)
        nll = -self.log_p[xp.arange(n), self.target]
        per_sample = (1 - self.eps) * nll - self.eps * self.log_p.mean(axis=1) if self.eps else nll
        if self.reduction == "none":
            return per_sample
        total = per_sample.sum()
        return total / n if self.reduction == "mean" else total

    def backward(self, gy):
        if self.grad is not None:   # the GPU's kernel left p - q, already divided by N for 'mean'
            return self.grad * (gy[:, None] if self.reduction == "none" else gy)
        xp = get_array_module(gy)
        n, k = self.log_p.shape
        q = xp.full((n, k), self.eps / k, dtype=self.log_p.dtype)
        q[xp.arange(n), self.target] += 1 - self.eps
        grad = xp.exp(self.log_p) - q
        if self.reduction == "none":
            return grad * gy[:, None]
        return grad * (gy / n if self.reduction == "mean" else gy)


def cross_entropy(input, target, label_smoothing=0.0, reduction="mean"):
    """Like ``torch.nn.functional.cross_entropy`` for logits (N, K) and class indices (N,)."""
    z = as_tensor(input)
    t = target.data if isinstance(target, Tensor) else target
    xp = get_array_module(z.data)
    # Host labels (what the loader yields) are range-checked on the host, before the one copy to the
    # device: no device sync per call. Labels already on the device are checked there (one sync).
    t = t if is_array(t) else np.asarray(t)
    if z.ndim != 2:
        raise ValueError(f"cross_entropy: expected logits (N, K), got shape {tuple(z.shape)}")
    if t.ndim != 1 or t.shape[0] != z.shape[0]:
        raise ValueError(f"cross_entropy: expected target ({z.shape[0]},) for logits {tuple(z.shape)}, "
                         f"got shape {tuple(t.shape)}")
    if t.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: target must hold integer class indices, got dtype {t.dtype}")
    if t.size and bool(((t < 0) | (t >= z.shape[1])).any()):
        raise ValueError(f"cross_entropy: target values must be in [0, {z.shape[1] - 1}] for "
                         f"{z.shape[1]} classes, got min {int(t.min())} and max {int(t.max())}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return CrossEntropy(labels_on(xp, t), label_smoothing, reduction)(z)


_last_sent = [None]   # (host copy, device array) of the labels labels_on sent last


def labels_on(xp, target):
    """``target`` (class indices) as int64 on ``xp``'s device, host labels copied there at most once per batch.

    A training step wants its labels on the device twice, for the loss and for the batch's scores
    (zoo/run/loop.batch_scores): the second call with the same values gets the first's device array.
    "Same" is checked on the host (dtype, shape and every value: a host comparison, no transfer), so a
    reused or edited host buffer is sent again, never answered with stale labels."""
    if xp is np or isinstance(target, xp.ndarray):
        return xp.asarray(target, dtype="int64")      # on the host already, or on the device already
    target = np.asarray(target)
    last = _last_sent[0]
    if (last is not None and last[0].dtype == target.dtype and last[0].shape == target.shape
            and last[1].device.id == xp.cuda.Device().id and np.array_equal(last[0], target)):
        return last[1]
    sent = xp.asarray(target, dtype="int64")
    _last_sent[0] = (target.copy(), sent)
    return sent
