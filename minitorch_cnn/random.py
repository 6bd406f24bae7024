"""The framework's random numbers: one seeded generator, so runs (and resumed runs) repeat exactly.

Initialisation and dropout draw from it. Its state is a plain dict that a
checkpoint can store (``get_rng_state`` / ``set_rng_state``).
"""
import numpy as np

from . import backend

_generator = [np.random.default_rng(0)]


def manual_seed(seed):
    """Reset the generator, like ``torch.manual_seed``."""
    _generator[0] = np.random.default_rng(seed)


def get_rng_state():
    return _generator[0].bit_generator.state


def set_rng_state(state):
    _generator[0].bit_generator.state = state


def uniform(shape, like):
    """Uniform [0, 1) samples of ``like``'s dtype on ``like``'s device."""
    dtype = like.dtype if like.dtype.kind == "f" else backend.DEFAULT_DTYPE
    sample = _generator[0].random(shape, dtype=np.float32 if dtype == np.float32 else np.float64)
    return backend.to_device(sample, backend.device_of(like))


def normal(shape, std=1.0, dtype=None):
    sample = _generator[0].standard_normal(shape) * std
    return sample.astype(dtype or backend.DEFAULT_DTYPE)


def uniform_range(shape, low, high, dtype=None):
    return _generator[0].uniform(low, high, shape).astype(dtype or backend.DEFAULT_DTYPE)
