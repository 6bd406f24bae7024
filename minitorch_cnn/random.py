"""The framework's random numbers: one seeded generator, so runs (and resumed runs) repeat exactly.

Initialisation and dropout draw from it. Its state is a plain dict that a
checkpoint can store (``get_rng_state`` / ``set_rng_state``).
"""
import numpy as np

from .device import DEFAULT_DTYPE, get_array_module

_generator = [np.random.default_rng(0)]
_on_device = {}   # GPU id -> its generator, seeded from _generator at first use (see uniform)


def manual_seed(seed):
    """Reset the generator, like ``torch.manual_seed``."""
    _generator[0] = np.random.default_rng(seed)
    _on_device.clear()


def get_rng_state():
    return _generator[0].bit_generator.state


def set_rng_state(state):
    _generator[0].bit_generator.state = state
    _on_device.clear()


def uniform(shape, like):
    """Uniform [0, 1) samples of ``like``'s dtype on ``like``'s device.

    On the GPU the samples are drawn there (a dropout mask is never made on the host and copied), from
    one generator per GPU, made at its first draw with a seed from the framework's generator and then
    reused (a new one per call would initialise its state on the device every time). A seeded run
    repeats; ``manual_seed`` and ``set_rng_state`` (a resumed checkpoint) make the next draw seed a new
    one from the restored state, so a resumed run repeats too, though its draws differ from those of
    the run that was not interrupted. The draws differ from the CPU's.
    """
    dtype = like.dtype if like.dtype.kind == "f" else DEFAULT_DTYPE
    dtype = np.float32 if dtype == np.float32 else np.float64
    xp = get_array_module(like)
    if xp is np:
        return _generator[0].random(shape, dtype=dtype)
    with xp.cuda.Device(like.device.id):   # a GPU array: drawn there, by that GPU's generator
        if like.device.id not in _on_device:
            _on_device[like.device.id] = xp.random.default_rng(int(_generator[0].integers(2 ** 63)))
        return _on_device[like.device.id].random(shape, dtype=dtype)


def normal(shape, std=1.0, dtype=None):
    sample = _generator[0].standard_normal(shape) * std
    return sample.astype(dtype or DEFAULT_DTYPE)


def uniform_range(shape, low, high, dtype=None):
    return _generator[0].uniform(low, high, shape).astype(dtype or DEFAULT_DTYPE)
