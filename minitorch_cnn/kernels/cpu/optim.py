"""The CPU's optimizer step: one pass over a parameter, its gradient and its state.

Written in NumPy, SGD with momentum and weight decay is ~6 passes over each parameter
(optim/sgd.py), each making a temporary as large as the parameter: 17M floats for
VGG-16's 4096x4096 layer, freshly page-faulted every step. This loop reads θ, g and b
once and writes θ and b once. It is kernels/cuda/optim.cu's ``sgd_step``, operation
for operation and in the parameter's precision (a hyper-parameter is rounded to it
first, as NumPy rounds a Python float beside a float32 array), so the numbers equal
the NumPy rule's; it runs per parameter (optim/fused.py says why the CPU does not pack).
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
