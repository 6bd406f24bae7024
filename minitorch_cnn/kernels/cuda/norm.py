"""GPU wrappers for norm.cu: training-mode batch norm, one block per channel, sums in double.

Same names and signatures as ``kernels/cpu`` and ``kernels/reference``.
"""
import numpy as np

from ...device import get_array_module
from .launch import i32, load_kernel, per_block


def _as_ncm(xp, x):
    return xp.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)


def batch_norm_forward(x, gamma, beta, eps, relu=False, high=None):
    """x (N, C, *) -> (y, mean, var, inv_std), the statistics of each channel over N and *; relu=True: y
    clamped to [0, high] (no upper bound when high is None) as it is written."""
    return batch_norm_forward_tracking(x, gamma, beta, eps, None, None, 0.0, relu=relu, high=high)


def batch_norm_forward_tracking(x, gamma, beta, eps, running_mean, running_var, momentum, num_batches_tracked=None,
                                relu=False, high=None):
    """``batch_norm_forward``, and running_mean, running_var (C,) updated in place by the same launch
    (GPU-only: on the CPU functional/norm.py updates them; None, None: not tracked). They must be
    contiguous arrays of x's dtype (``tracks_in_place`` says whether these are). ``num_batches_tracked``,
    a 0-d int64 array on the device (BatchNorm's buffer), is incremented by that launch too."""
    xp = get_array_module(x)
    x3 = _as_ncm(xp, x)
    y = xp.empty_like(x3)
    mean, var, inv_std = (xp.empty(x3.shape[1], x3.dtype) for _ in range(3))
    gamma, beta = (xp.ascontiguousarray(a, dtype=x3.dtype) for a in (gamma, beta))
    track = running_mean is not None
    if track and not tracks_in_place(x, running_mean, running_var):
        raise ValueError(f"batch_norm_forward_tracking: running statistics must be contiguous ({x.shape[1]},) "
                         f"{x3.dtype} arrays, got {running_mean.dtype} {tuple(running_mean.shape)} and "
                         f"{running_var.dtype} {tuple(running_var.shape)}")
    running = (running_mean, running_var) if track else (mean, var)   # not touched when track == 0
    counted = num_batches_tracked is not None
    if counted and (num_batches_tracked.dtype != np.int64 or num_batches_tracked.size != 1):
        raise ValueError(f"batch_norm_forward_tracking: num_batches_tracked must be one int64, got "
                         f"{num_batches_tracked.dtype} {tuple(num_batches_tracked.shape)}")
    batches = num_batches_tracked if counted else xp.empty(1, np.int64)   # not touched when not counted
    low, high = (0.0 if relu else -np.inf), (np.inf if high is None or not relu else high)
    per_block(load_kernel("norm", "batch_norm_forward", x3.dtype, x3), x3.shape[1],
              (x3, gamma, beta, np.float64(eps), y, mean, var, inv_std, *running, np.float64(momentum),
               np.int32(track), batches, np.int32(counted), np.float64(low), np.float64(high), *i32(*x3.shape)),
              x3.shape[0] * x3.shape[2])
    return y.reshape(x.shape), mean, var, inv_std


def tracks_in_place(x, running_mean, running_var):
    """Whether the forward kernel can update these running statistics itself (x's dtype, contiguous (C,))."""
    return all(r.dtype == x.dtype and r.shape == (x.shape[1],) and r.flags.c_contiguous
               for r in (running_mean, running_var))


def batch_norm_backward(gy, x, gamma, mean, inv_std, z=None, high=None):
    """gy (N, C, *) -> (dx, dgamma, dbeta), x_hat recomputed from x, mean and inv_std; z: the output of a forward
    with relu=True, whose clamp masks gy first (0 < z < high)."""
    xp = get_array_module(gy)
    gy3, x3 = _as_ncm(xp, gy), _as_ncm(xp, x)
    z3 = gy3 if z is None else _as_ncm(xp, z.astype(gy3.dtype, copy=False))   # gy3: not read when not masked
    bound = gy3.dtype.type(np.inf if high is None else high)
    gx = xp.empty_like(gy3)
    ggamma, gbeta = xp.empty(gy3.shape[1], gy3.dtype), xp.empty(gy3.shape[1], gy3.dtype)
    gamma, mean, inv_std = (xp.ascontiguousarray(a, dtype=gy3.dtype) for a in (gamma, mean, inv_std))
    per_block(load_kernel("norm", "batch_norm_backward", gy3.dtype, gy3), gy3.shape[1],
              (gy3, x3, gamma, mean, inv_std, z3, np.int32(z is not None), bound, np.int32(high is not None),
               gx, ggamma, gbeta, *i32(*gy3.shape)), gy3.shape[0] * gy3.shape[2])
    return gx.reshape(gy.shape), ggamma, gbeta
