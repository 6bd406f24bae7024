"""minitorch_cnn: a small, readable deep-learning framework for convolutional networks.

    Tensor, no_grad        the autograd engine (tensor.py, autograd.py)
    functional             differentiable operations, forward next to backward
    nn                     layers as Modules (Conv2d, BatchNorm2d, ...)
    optim                  SGD, Adam, Adagrad, Adadelta, RMSprop and lr schedules
    gradcheck              finite-difference gradient checking
    device, Device         where arrays live ("cpu", "cuda", "cuda:N", "cuda-emulator"): device.py
    Config, using_config   the framework's switches (grad mode, default device, ...): config.py
"""
from . import _openblas  # noqa: F401, I001  (first: sets OpenBLAS's thread timeout before NumPy loads it)
from . import _malloc  # noqa: F401, I001  (freed activations kept by malloc for the next step)
from . import _numba_threads  # noqa: F401, I001  (Numba's threading layer, before any thread starts)
from . import functional, nn, optim
from .autograd import Function, enable_grad, is_grad_enabled, no_grad
from .config import Config, using_config
from .device import Device, device, get_default_device, set_default_device, using_device
from .gradcheck import gradcheck
from .random import get_rng_state, manual_seed, set_rng_state
from .tensor import Tensor, tensor

__version__ = "0.1.0"

__all__ = ["Config", "Device", "Function", "Tensor", "device", "enable_grad", "functional",
           "get_default_device", "get_rng_state", "gradcheck", "is_grad_enabled", "manual_seed", "nn", "no_grad",
           "optim", "set_default_device", "set_rng_state", "tensor", "using_config", "using_device"]
