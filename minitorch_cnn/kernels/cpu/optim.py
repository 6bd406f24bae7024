"""The CPU's optimizer steps: one pass over a parameter, its gradient and its state.

Written in NumPy, SGD with momentum and weight decay is ~6 passes over each parameter
(optim/sgd.py) and Adam ~10 (optim/adam.py), each making a temporary as large as the
parameter: 17M floats for VGG-16's 4096x4096 layer, freshly page-faulted every step.
These loops read the parameter, its gradient and its state once and write the parameter
and the state once. They are kernels/cuda/optim.cu's ``sgd_step`` and ``adam_step``,
operation for operation and in the parameter's precision (a hyper-parameter is rounded to
it first, as NumPy rounds a Python float beside a float32 array), so the numbers equal the
NumPy rules'; they run per parameter (optim/fused.py says why the CPU does not pack).
"""
import numpy as np
from numba import prange

from .jit import kernel


@kernel
def _sgd(param, grad, buf, step, mu, keep, wd, decay, momentum, nesterov, first):
    for i in prange(param.size):
        p, g = param[i], grad[i]
        if decay:
            g = g + wd * p
        if momentum:
            b = g if first else buf[i] * mu + keep * g
            buf[i] = b
            g = g + mu * b if nesterov else b
        param[i] = p - step * g


def sgd_step(param, grad, buf, lr, momentum, dampening, weight_decay, nesterov, first):
    """As ``kernels.cuda.sgd_step``, for one parameter of any shape: param -= lr * the SGD direction of grad;
    buf, the momentum buffer, updated in place (set to the decayed gradient when ``first``); momentum 0 leaves
    buf alone. param and buf must be C-contiguous (they are written through flat views)."""
    if not (param.flags.c_contiguous and buf.flags.c_contiguous and buf.shape == param.shape == grad.shape):
        raise ValueError(f"sgd_step: expected C-contiguous param and buf of grad's shape, got {param.shape}, "
                         f"{buf.shape} and {grad.shape}")
    t = param.dtype.type
    flat = param.reshape(-1)
    _sgd(flat.size, flat, np.ascontiguousarray(grad, dtype=param.dtype).reshape(-1), buf.reshape(-1), t(lr),
         t(momentum), t(1.0 - dampening), t(weight_decay), weight_decay != 0, momentum != 0, bool(nesterov),
         bool(first))


@kernel
def _adam(param, grad, m_, v_, vmax_, c1, b2, c2, wd, decay, e, s, bc2, amsgrad):
    for i in prange(param.size):
        p, g = param[i], grad[i]
        if decay:
            g = g + wd * p
        m = m_[i]
        m = m + c1 * (g - m)
        m_[i] = m
        v = v_[i] * b2
        v = v + (c2 * g) * g
        v_[i] = v
        if amsgrad:
            old = vmax_[i]
            v = old if (old != old) | (old > v) else v   # NaN wins, as NumPy's maximum
            vmax_[i] = v
        param[i] = p - (s * m) / (np.sqrt(v) / bc2 + e)


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, betas, eps, weight_decay, step_size, bias2_sqrt):
    """As ``kernels.cuda.adam_step``, for one parameter of any shape: param -= step_size * m / (sqrt(v) /
    bias2_sqrt + eps), with m = exp_avg and v = exp_avg_sq (or, for AMSGrad, their running maximum
    ``max_exp_avg_sq``; None without AMSGrad) updated in place first."""
    amsgrad = max_exp_avg_sq is not None
    state = (exp_avg, exp_avg_sq) + ((max_exp_avg_sq,) if amsgrad else ())
    if not all(a.flags.c_contiguous and a.shape == param.shape == grad.shape for a in (param,) + state):
        raise ValueError(f"adam_step: expected C-contiguous param and state of grad's shape, got "
                         f"{[tuple(a.shape) for a in (param,) + state]} and {grad.shape}")
    t, flat = param.dtype.type, param.reshape(-1)
    m, v = exp_avg.reshape(-1), exp_avg_sq.reshape(-1)
    _adam(flat.size, flat, np.ascontiguousarray(grad, dtype=param.dtype).reshape(-1), m, v,
          max_exp_avg_sq.reshape(-1) if amsgrad else v, t(1.0 - betas[0]), t(betas[1]), t(1.0 - betas[1]),
          t(weight_decay), weight_decay != 0, t(eps), t(step_size), t(bias2_sqrt), amsgrad)
