"""Weight initialisation, as ``torch.nn.init``: each function fills a Parameter in place and returns it."""
import math

from ..device import device_of
from ..random import normal, uniform_range


def _fans(param):
    shape = param.shape
    if len(shape) < 2:
        raise ValueError(f"init: fan in/out need a parameter with at least 2 dimensions, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    if nonlinearity in ("linear", "conv2d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _fill(param, host_array):
    param.data[...] = device_of(param.data).send(host_array.astype(param.dtype))
    return param


def uniform_(param, a=0.0, b=1.0):
    return _fill(param, uniform_range(param.shape, a, b))


def normal_(param, mean=0.0, std=1.0):
    return _fill(param, normal(param.shape, std) + mean)


def constant_(param, value):
    param.data[...] = value
    return param


def zeros_(param):
    return constant_(param, 0.0)


def ones_(param):
    return constant_(param, 1.0)


def _kaiming_std(param, a, mode, nonlinearity):
    fan_in, fan_out = _fans(param)
    fan = {"fan_in": fan_in, "fan_out": fan_out}.get(mode)
    if fan is None:
        raise ValueError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(param, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    bound = math.sqrt(3.0) * _kaiming_std(param, a, mode, nonlinearity)
    return uniform_(param, -bound, bound)


def kaiming_normal_(param, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    return normal_(param, 0.0, _kaiming_std(param, a, mode, nonlinearity))


def xavier_uniform_(param, gain=1.0):
    fan_in, fan_out = _fans(param)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(param, -bound, bound)


def xavier_normal_(param, gain=1.0):
    fan_in, fan_out = _fans(param)
    return normal_(param, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def default_init_(weight, bias):
    """PyTorch's default for Conv2d and Linear: kaiming_uniform(a=sqrt(5)) -> U(+-1/sqrt(fan_in)) for both."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1.0 / math.sqrt(_fans(weight)[0]) if _fans(weight)[0] > 0 else 0.0
        uniform_(bias, -bound, bound)
