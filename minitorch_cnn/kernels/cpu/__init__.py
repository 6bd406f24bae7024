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
# From this many output pixels per image, im2col's forward runs one (F, K) @ (K, Ho*Wo) product per image
# straight into the NCHW output (functional/conv.py); below it, one product over the whole batch and a
# transposing copy of the output. OpenBLAS SkylakeX, batch 64, one thread: 16 pixels (512 filters of 2304)
# 32 ms per image against 16 ms whole; 256 pixels even; 1024 pixels (64 of 27) 2.5 ms per image against 4.2.
gemm_per_image_from = 512
CPU_ONLY = ("winograd_conv", "winograd_weight_grad", "winograd_weights")

__all__ = ["avg_pool_backward", "avg_pool_forward", "batch_norm_backward", "batch_norm_forward",
           "clamp_backward", "clamp_forward", "col2im", "depthwise_backward", "depthwise_forward", "im2col",
           "max_pool_backward", "max_pool_forward", "winograd_conv", "winograd_weight_grad",
           "winograd_weights"]
