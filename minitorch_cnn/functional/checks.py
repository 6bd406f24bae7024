"""Argument checks shared by the layers: every error names the layer, what it expected and what came.

Also the one convention for an optional bias: ``with_bias_grad``."""
import numbers


def pair(value, layer, name):
    """An int or a pair of ints -> (a, b)."""
    if isinstance(value, numbers.Integral):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, numbers.Integral) for v in value):
        return int(value[0]), int(value[1])
    raise TypeError(f"{layer}: {name} must be an int or a pair of ints, got {value!r}")


def check_ndim(x, ndim, layer, layout="(N, C, H, W)"):
    """``x``: an array or Tensor, or its shape (a tuple)."""
    shape = x if isinstance(x, tuple) else x.shape
    if len(shape) != ndim:
        raise ValueError(f"{layer}: expected a {ndim}-D input {layout}, got shape {tuple(shape)}")


def output_size(size, kernel, stride, padding, dilation, layer, x_shape):
    """Positions a window of ``kernel`` taps (``dilation`` apart) takes along one padded axis."""
    span = dilation * (kernel - 1) + 1
    if size + 2 * padding < span:
        raise ValueError(f"{layer}: kernel {kernel} (span {span}) is larger than the padded input "
                         f"{size} + 2*{padding} = {size + 2 * padding} (input shape {tuple(x_shape)})")
    return (size + 2 * padding - span) // stride + 1


def check_positive(layer, **values):
    for name, v in values.items():
        if min(v) < 1:
            raise ValueError(f"{layer}: {name} must be >= 1, got {v}")


def check_padding(layer, padding, kernel):
    """Pooling pads at most half a window on each side (PyTorch's rule), else windows see only padding."""
    for p, k in zip(padding, kernel):
        if p < 0 or p > k // 2:
            raise ValueError(f"{layer}: padding must be between 0 and half the kernel size "
                             f"{kernel}, got {padding}")


def with_bias_grad(fn, grads, gy, bias_axis):
    """The gradients a Function with an optional bias returns from backward.

    Such a Function is called as ``fn(x, w)`` or ``fn(x, w, b)``, and backward returns one gradient
    per input: ``grads`` (dx, dW), plus, when a bias came, db = ``gy`` summed over every axis but
    ``bias_axis``, the one the bias runs along (None when the bias needs no gradient).
    """
    if len(fn.needs_input_grad) == len(grads):
        return grads
    gb = None
    if fn.needs_input_grad[len(grads)]:
        gb = gy.sum(axis=tuple(a for a in range(gy.ndim) if a != bias_axis % gy.ndim))
    return (*grads, gb)
