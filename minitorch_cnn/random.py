"""The framework's random numbers: one seeded generator, so runs (and resumed runs) repeat exactly.

Initialisation and dropout draw from it. Its state is a plain dict that a
checkpoint can store (``get_rng_state`` / ``set_rng_state``).
"""
import numpy as np

from .device import DEFAULT_DTYPE, get_array_module, uniform_on_device

_generator = [np.random.default_rng(0)]


def manual_seed(seed):
    """Reset the generator, like ``torch.manual_seed``."""
    _generator[0] = np.random.default_rng(seed)


def get_rng_state():
    return _generator[0].bit_generator.state


def set_rng_state(state):
    _generator[0].bit_generator.state = state


def uniform(shape, like):
    """Uniform [0, 1) samples of ``like``'s dtype on ``like``'s device.

    On the GPU the samples are drawn there (a dropout mask is never made on the host and copied):
    the framework's generator gives the seed of a device generator, so a seeded run still repeats
    and a checkpoint's generator state still covers it; the draws differ from the CPU's.
    """
    dtype = like.dtype if like.dtype.kind == "f" else DEFAULT_DTYPE
    dtype = np.float32 if dtype == np.float32 else np.float64
    if get_array_module(like) is not np:   # a GPU array: drawn there
        return uniform_on_device(int(_generator[0].integers(2 ** 63)), shape, dtype, like)
    return _generator[0].random(shape, dtype=dtype)


def normal(shape, std=1.0, dtype=None):
    sample = _generator[0].standard_normal(shape) * std
    return sample.astype(dtype or DEFAULT_DTYPE)


def uniform_range(shape, low, high, dtype=None):
    return _generator[0].uniform(low, high, shape).astype(dtype or DEFAULT_DTYPE)
