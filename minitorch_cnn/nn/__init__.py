"""``minitorch_cnn.nn``: layers as Modules, named and initialised as in ``torch.nn``."""
from . import init
from .activation import Dropout, ReLU, ReLU6, Sigmoid, Softmax, Tanh
from .containers import ModuleList, Sequential
from .fold import Folding, fold_batch_norm
from .fuse import Fusion, fuse_batch_norm_activation
from .layers import (
                     AdaptiveAvgPool2d,
                     AvgPool2d,
                     BatchNorm1d,
                     BatchNorm2d,
                     Conv2d,
                     CrossEntropyLoss,
                     Flatten,
                     Identity,
                     Linear,
                     MaxPool2d,
)
from .module import Module, Parameter, RemovableHandle

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "CrossEntropyLoss", "Dropout",
           "Flatten", "Folding", "Fusion", "Identity", "Linear", "MaxPool2d", "Module", "ModuleList", "Parameter",
           "ReLU", "ReLU6", "RemovableHandle", "Sequential", "Sigmoid", "Softmax", "Tanh", "fold_batch_norm",
           "fuse_batch_norm_activation", "init"]
