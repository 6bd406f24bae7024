"""``minitorch_cnn.functional``: the differentiable operations, named as in ``torch.nn.functional``.

Each module holds Functions whose forward and backward sit side by side:
conv (im2col convolution, depthwise), pool, norm, activation, dropout, loss,
linear, shape, and tensor_ops (the arithmetic behind Tensor's operators).
"""
from .activation import log_softmax, relu, relu6, sigmoid, softmax, tanh
from .conv import conv2d
from .dropout import dropout
from .linear import linear
from .loss import cross_entropy
from .norm import batch_norm
from .pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from .shape import cat, flatten
from .tensor_ops import exp, log, matmul, mean, reshape, transpose

__all__ = ["adaptive_avg_pool2d", "avg_pool2d", "batch_norm", "cat", "conv2d", "cross_entropy",
           "dropout", "exp", "flatten", "linear", "log", "log_softmax", "matmul", "max_pool2d",
           "mean", "relu", "relu6", "reshape", "sigmoid", "softmax", "tanh", "transpose"]
