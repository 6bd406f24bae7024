"""minitorch_cnn: a small, readable deep-learning framework for convolutional networks.

    Tensor, no_grad        the autograd engine (tensor.py, autograd.py)
    functional             differentiable operations, forward next to backward
    nn                     layers as Modules (Conv2d, BatchNorm2d, ...)
    optim                  SGD, Adam, Adagrad, Adadelta, RMSprop and lr schedules
    gradcheck              finite-difference gradient checking
    backend                NumPy or CuPy: the one place that decides
"""
from . import backend, functional, nn, optim
from .autograd import Function, enable_grad, is_grad_enabled, no_grad
from .gradcheck import gradcheck
from .random import get_rng_state, manual_seed, set_rng_state
from .tensor import Tensor, tensor

__version__ = "0.1.0"

__all__ = ["Function", "Tensor", "backend", "enable_grad", "functional", "get_rng_state", "gradcheck",
           "is_grad_enabled", "manual_seed", "nn", "no_grad", "optim", "set_rng_state", "tensor"]
