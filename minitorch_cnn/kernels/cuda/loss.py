"""GPU wrapper for loss.cu: softmax cross-entropy's per-sample losses and its gradient in one launch (GPU-only;
functional/loss.py computes the same in NumPy on the CPU)."""
import numpy as np

from ...device import get_array_module
from .launch import elementwise, i32, load_kernel


def cross_entropy_forward(z, target, label_smoothing, scale):
    """logits z (N, K), target (N,) int64 on z's device -> (loss (N,), grad (N, K) = scale * (softmax(z) - q)),
    q the (smoothed) one-hot target."""
    xp = get_array_module(z)
    z = xp.ascontiguousarray(z)
    if z.ndim != 2 or target.shape != (z.shape[0],) or target.dtype != np.int64:
        raise ValueError(f"cross_entropy_forward: expected logits (N, K) and int64 targets (N,), got "
                         f"{tuple(z.shape)} and {target.dtype} {tuple(target.shape)}")
    loss, grad = xp.empty(z.shape[0], z.dtype), xp.empty_like(z)
    elementwise(load_kernel("loss", "cross_entropy_forward", z.dtype, z), z.shape[0],
                (z, xp.ascontiguousarray(target), loss, grad, *i32(*z.shape), np.float64(label_smoothing),
                 np.float64(scale)))
    return loss, grad
