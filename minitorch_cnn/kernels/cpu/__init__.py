"""CPU kernels in Numba: parallel loops over (image, channel) planes, compiled once and cached.

Same names and signatures as ``kernels.reference``; the tests hold them to it.
"""
from .conv import col2im, im2col
from .depthwise import depthwise_backward, depthwise_forward
from .elementwise import clamp_backward, clamp_forward
from .norm import batch_norm_backward, batch_norm_forward
from .pool import avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward
from .winograd import winograd_conv, winograd_weight_grad, winograd_weights

# The convolution algorithms these kernels offer (functional.conv.conv_path picks among them), and
# the kernels only the CPU has: every other name here has a GPU twin of the same signature in kernels/cuda
# (tests/kernels/test_kernels.py holds them to it).
conv_algorithms = ("im2col", "winograd")
CPU_ONLY = ("winograd_conv", "winograd_weight_grad", "winograd_weights")

__all__ = ["avg_pool_backward", "avg_pool_forward", "batch_norm_backward", "batch_norm_forward",
           "clamp_backward", "clamp_forward", "col2im", "depthwise_backward", "depthwise_forward", "im2col",
           "max_pool_backward", "max_pool_forward", "winograd_conv", "winograd_weight_grad",
           "winograd_weights"]
