"""Batch normalisation: normalise each channel over the batch, then scale and shift.

Training:  mu, var = mean and biased variance over (N, H, W);  x_hat = (x - mu) / sqrt(var + eps)
           y = gamma * x_hat + beta;  running stats <- (1 - momentum) * running + momentum * batch stat,
           with the *unbiased* variance in the running estimate (PyTorch's convention).
Eval:      the same with the running mean and variance in place of the batch's.

``activation="relu"`` or ``"relu6"`` clamps the output, z = min(max(y, 0), high), in the same Function: in
training one kernel writes z with no y array between them, and its backward masks dz as it reads it
(nn/fuse.py runs a model's BatchNorm2d -> ReLU pairs so).
"""
from ..autograd import Function
from ..device import get_array_module, kernels
from ..tensor import Tensor, as_tensor
from .activation import relu, relu6

# activation -> (clamped, upper bound): the kernels' relu and high arguments (high None: no upper bound)
ACTIVATIONS = {None: (False, None), "relu": (True, None), "relu6": (True, 6.0)}


def _channel_shape(x):
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _reduce_axes(x):
    return (0,) + tuple(range(2, x.ndim))


class BatchNormTrain(Function):
    """x: (N, C, *), gamma, beta: (C,) -> (N, C, *), normalised with this batch's statistics, and clamped when
    ``activation`` is "relu" (z = max(y, 0)) or "relu6" (z = min(max(y, 0), 6)).

    Local derivative of the clamped form: dy = dz * [0 < z < high] (as ReLU's backward, read from the output
    z), then batch norm's own: with x_hat = (x - mean) * inv_std, g = dy * gamma and M values per channel,
    dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat)), dgamma = sum(dy * x_hat), dbeta = sum(dy).

    ``running`` = (running_mean, running_var, momentum), or None: the running statistics (C,), updated
    in place with this batch's mean and unbiased variance; ``counter``: a 0-d int64 array (BatchNorm's
    num_batches_tracked) that counts the batch, or None. On a GPU the forward kernel does both in the
    same launch (kernels/cuda/norm.py, batch_norm_forward_tracking); elsewhere ``update_running`` below.
    """
    def __init__(self, eps, running, counter=None, activation=None):
        self.eps, self.running, self.counter = eps, running or None, counter
        self.relu, self.high = ACTIVATIONS[activation]

    def forward(self, x, gamma, beta):
        k = kernels(x)
        tracking = getattr(k, "batch_norm_forward_tracking", None)
        if self.running is not None and tracking is not None and k.tracks_in_place(x, *self.running[:2]):
            y, mean, var, inv_std = tracking(x, gamma, beta, self.eps, *self.running, self.counter,
                                             relu=self.relu, high=self.high)
        else:
            y, mean, var, inv_std = k.batch_norm_forward(x, gamma, beta, self.eps, relu=self.relu, high=self.high)
            if self.running is not None:
                update_running(*self.running, mean, var, x.size // x.shape[1])
            if self.counter is not None:
                self.counter[...] += 1
        # x, not x_hat: x is this Function's input, which the graph holds anyway, so the saved state costs
        # no activation-sized array of its own; the backward kernel recomputes x_hat on the fly.
        self.x, self.gamma, self.mean, self.inv_std = x, gamma, mean, inv_std
        # The clamped output z, for the mask 0 < z < high (as ReLU keeps its output): the next layer's input,
        # held by the graph anyway.
        self.z = y if self.relu else None
        return y

    def backward(self, gz):
        # The formulas of the docstring, in one kernel: it reads dz, z (the mask), x and writes dx (reference.py)
        return kernels(gz).batch_norm_backward(gz, self.x, self.gamma, self.mean, self.inv_std, z=self.z,
                                               high=self.high)


def update_running(running_mean, running_var, momentum, mean, var, count):
    """running <- (1 - momentum) * running + momentum * batch statistic, in place, with the unbiased
    variance var * count / (count - 1) (PyTorch's convention); count: values per channel."""
    running_mean[...] = (1 - momentum) * running_mean + momentum * mean
    running_var[...] = (1 - momentum) * running_var + momentum * var * (count / (count - 1))


class BatchNormEval(Function):
    """x: (N, C, *) -> gamma * (x - running_mean) / sqrt(running_var + eps) + beta: a fixed affine map."""
    def __init__(self, mean, var, eps):
        self.mean, self.var, self.eps = mean, var, eps

    def forward(self, x, gamma, beta):
        xp = get_array_module(x)
        shape = _channel_shape(x)
        self.inv_std = (1.0 / xp.sqrt(self.var + self.eps)).astype(x.dtype)
        # Folded into y = x * scale + shift (PyTorch's inference form): two passes over x, one output array.
        scale = gamma * self.inv_std
        shift = beta - self.mean * scale
        y = xp.multiply(x, scale.reshape(shape))
        y += shift.reshape(shape)
        self.x, self.scale = x, scale   # x: the input, held by the graph anyway; no x_hat array
        return y

    def backward(self, gy):
        axes, shape = _reduce_axes(gy), _channel_shape(gy)
        gx = gy * self.scale.reshape(shape) if self.needs_input_grad[0] else None
        ggamma = None
        if self.needs_input_grad[1]:   # dgamma = sum(gy * x_hat) = inv_std * sum(gy * (x - mean))
            ggamma = (gy * (self.x - self.mean.reshape(shape))).sum(axis=axes) * self.inv_std
        return gx, ggamma, gy.sum(axis=axes) if self.needs_input_grad[2] else None


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5, *,
               num_batches_tracked=None, activation=None):
    """Like ``torch.nn.functional.batch_norm``. x: (N, C), (N, C, L) or (N, C, H, W) -> x's shape.

    ``running_mean`` / ``running_var`` are arrays (or Tensors) updated in place when
    training; pass None to use batch statistics without tracking them. ``num_batches_tracked``
    (not torch's: nn.BatchNorm's buffer, a 0-d int64 array) is incremented in place when training
    with running statistics: on a GPU by the same kernel launch, not a launch of its own. ``activation``
    (not torch's): None, "relu" or "relu6", applied to the output; in training in the same kernels.
    """
    x = as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input (N, C, ...), got shape {tuple(x.shape)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"batch_norm: activation must be None, 'relu' or 'relu6', got {activation!r}")
    c = x.shape[1]
    xp = get_array_module(x.data)
    raw = [r.data if isinstance(r, Tensor) else r for r in (running_mean, running_var)]
    for name, r in zip(("running_mean", "running_var"), raw):
        if r is not None and tuple(r.shape) != (c,):
            raise ValueError(f"batch_norm: {name} has shape {tuple(r.shape)}, expected ({c},) "
                             f"for input {tuple(x.shape)}")
    gamma = as_tensor(weight) if weight is not None else Tensor(xp.ones(c, x.dtype))
    beta = as_tensor(bias) if bias is not None else Tensor(xp.zeros(c, x.dtype))
    if not training:
        if raw[0] is None or raw[1] is None:
            raise ValueError("batch_norm: eval mode needs running_mean and running_var")
        mean, var = (r.astype(x.dtype, copy=False) for r in raw)
        y = BatchNormEval(mean, var, eps)(x, gamma, beta)
        # eval: an affine map, then the activation as a Function of its own (nn/fold.py is eval's fusion)
        return y if activation is None else (relu6 if activation == "relu6" else relu)(y)
    count = x.size // c
    if count <= 1:
        raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                         f"got input shape {tuple(x.shape)}")
    running = None if raw[0] is None else (raw[0], raw[1], momentum)
    counter = None if running is None else num_batches_tracked
    return BatchNormTrain(eps, running, counter, activation)(x, gamma, beta)
