"""GPU wrappers for optim.cu: a whole parameter group's SGD or Adam step in one launch, over flat buffers
(optim/fused.py packs them). GPU-only (``GPU_ONLY`` in this package): on the CPU the optimizers run their
per-parameter NumPy rules, which these kernels repeat operation for operation.

Every array is 1-D, C-contiguous and of one dtype; ``param``, the state buffers are updated in place.
"""
import numpy as np

from .launch import elementwise, load_kernel


def _check(name, arrays):
    first = arrays[0]
    for a in arrays:
        if a.ndim != 1 or a.shape != first.shape or a.dtype != first.dtype or not a.flags.c_contiguous:
            raise ValueError(f"{name}: expected contiguous 1-D arrays of one shape and dtype, got "
                             f"{[(tuple(b.shape), str(b.dtype)) for b in arrays]}")


def sgd_step(param, grad, buf, lr, momentum, dampening, weight_decay, nesterov, first):
    """param (P,) -= lr * the SGD direction of grad (P,); buf (P,), the momentum buffer, updated (set to the
    decayed gradient when ``first``); momentum 0 leaves buf alone."""
    _check("sgd_step", (param, grad, buf))
    elementwise(load_kernel("optim", "sgd_step", param.dtype, param), param.size,
                (param, grad, buf, np.int64(param.size), np.float64(lr), np.float64(momentum),
                 np.float64(dampening), np.float64(weight_decay), np.int32(bool(nesterov)), np.int32(bool(first))))


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, betas, eps, weight_decay, step_size, bias2_sqrt):
    """param (P,) -= step_size * m / (sqrt(v) / bias2_sqrt + eps), with m = exp_avg and v = exp_avg_sq (or, for
    AMSGrad, their running maximum ``max_exp_avg_sq``; None without AMSGrad) updated in place first."""
    amsgrad = max_exp_avg_sq is not None
    vmax = max_exp_avg_sq if amsgrad else exp_avg_sq
    _check("adam_step", (param, grad, exp_avg, exp_avg_sq, vmax))
    elementwise(load_kernel("optim", "adam_step", param.dtype, param), param.size,
                (param, grad, exp_avg, exp_avg_sq, vmax, np.int64(param.size), np.float64(betas[0]),
                 np.float64(betas[1]), np.float64(eps), np.float64(weight_decay), np.float64(step_size),
                 np.float64(bias2_sqrt), np.int32(amsgrad)))
