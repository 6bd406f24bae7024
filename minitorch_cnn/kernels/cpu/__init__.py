"""CPU kernels in Numba: parallel loops over (image, channel) planes, compiled once and cached.

Same names and signatures as ``kernels.reference``; the tests hold them to it.
"""
from .conv import col2im, im2col
from .depthwise import depthwise_backward, depthwise_forward
from .elementwise import clamp, clamp_backward, clamp_forward
from .norm import batch_norm_backward, batch_norm_forward
from .pool import avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward
from .winograd import winograd_conv, winograd_weight_grad, winograd_weights

# The convolution algorithms these kernels offer (functional.conv.conv_path picks among them), and
# the kernels only the CPU has: every other name here has a GPU twin of the same signature in kernels/cuda
# (tests/kernels/test_tiers.py holds them to it).
conv_algorithms = ("im2col", "winograd")
CPU_ONLY = ("winograd_conv", "winograd_weight_grad", "winograd_weights")
# From how many output pixels per image a convolution's forward runs one product per image straight into
# the NCHW output (functional/conv.py), per algorithm; below it, one product over the whole batch and a
# transposing copy (pointwise: also x's channel-first copy, and the same for dx). OpenBLAS SkylakeX, batch 64,
# one thread: im2col at 16 pixels (512 filters of 2304) 32 ms per image against 16 ms whole, 19.5 against 15.8
# at 64 (256 of 1152), even at 256, 2.5 against 4.2 ms at 1024 (64 of 27), and LeNet-5's forward 5.4 against
# 6.8 ms with its 10x10 layer per image; pointwise 512 -> 1024 channels at 2x2 17 against 2.4 ms, 64 -> 384 at
# 8x8 2.1 against 2.8 ms.
gemm_per_image_from = {"im2col": 100, "pointwise": 64}

__all__ = ["avg_pool_backward", "avg_pool_forward", "batch_norm_backward", "batch_norm_forward",
           "clamp", "clamp_backward", "clamp_forward", "col2im", "depthwise_backward", "depthwise_forward",
           "im2col", "max_pool_backward", "max_pool_forward", "winograd_conv", "winograd_weight_grad",
           "winograd_weights"]
