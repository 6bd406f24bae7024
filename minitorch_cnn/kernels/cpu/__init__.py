"""CPU kernels in Numba: parallel loops over (image, channel) planes, compiled once and cached.

Same names and signatures as ``kernels.reference``; the tests hold them to it.
"""
from .conv import col2im, im2col
from .depthwise import depthwise_backward, depthwise_forward
from .direct import direct_conv, direct_conv_backward
from .elementwise import clamp, clamp_backward, clamp_forward
from .norm import batch_norm_backward, batch_norm_forward
from .optim import adam_step, sgd_step
from .pool import avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward
from .threads import batched_matmul, matmul_channels_first, summed_matmul_nt
from .winograd import winograd_conv, winograd_weight_grad, winograd_weights

# The convolution algorithms these kernels offer (functional.conv.conv_path picks among them), and
# the kernels only the CPU has: every other name here has a GPU twin of the same signature in kernels/cuda
# (tests/kernels/test_tiers.py holds them to it).
conv_algorithms = ("im2col", "winograd", "direct")
winograd_tiles = (2, 4)   # the output tiles m of the F(m x m, 3x3) the Winograd kernels run
CPU_ONLY = ("direct_conv", "direct_conv_backward", "winograd_conv", "winograd_weight_grad", "winograd_weights")
# Each tile size from this many output pixels per image; Winograd from the smallest, im2col below it. F(4x4)
# from an 8x8 map: on 4x4 maps it is one tile per image and channel, too few for its 36 products to run well,
# and U = G g G^T (36 MB at 512 channels) is made in the forward and again for dx. F(2x2) from a 4x4 map: on
# 2x2 maps its transforms cost more than its products save. Batch 64, 2 threads, AVX-512 (2026-12-07), forward
# / forward + backward: 512 -> 512 at 4x4 im2col 18.7 / 58.5 ms, F(2x2) 15.5 / 55.9, F(4x4) training 62.3;
# 256 -> 512 at 4x4 im2col 9.7 / 29.0, F(2x2) 8.6 / 30.1; 512 -> 512 at 2x2 im2col 6.1 / 17.9, F(2x2)
# 7.8 / 29.6; 256 -> 256 at 8x8 F(4x4) training 42 against im2col's 71.
winograd_from_pixels = {2: 16, 4: 64}
# The optimizer step kernels (not in __all__: optimizers call them, no layer does; imported for optim/) and
# whether a parameter group is packed into one flat array for them: on the CPU each parameter takes one call.
_OPTIMIZER_STEPS = (adam_step, sgd_step)
pack_optimizer_groups = False
# From how many output pixels per image a convolution's forward runs one product per image straight into
# the NCHW output (functional/conv.py), per algorithm; below it, one product over the whole batch and a
# transposing copy (pointwise: also x's channel-first copy, and the same for dx). OpenBLAS SkylakeX, batch 64,
# one thread: im2col at 16 pixels (512 filters of 2304) 32 ms per image against 16 ms whole, 19.5 against 15.8
# at 64 (256 of 1152), even at 256, 2.5 against 4.2 ms at 1024 (64 of 27), and LeNet-5's forward 5.4 against
# 6.8 ms with its 10x10 layer per image; pointwise 512 -> 1024 channels at 2x2 17 against 2.4 ms, 64 -> 384 at
# 8x8 2.1 against 2.8 ms.
gemm_per_image_from = {"im2col": 100, "pointwise": 64}
# Those products over a batch: ``batched_matmul`` (not in __all__: BLAS runs them, no kernel of ours; every
# kernel module has one) shares the images out to one thread per core.
_PRODUCTS = (batched_matmul, matmul_channels_first, summed_matmul_nt)
# im2col's weight gradient dW = dY @ cols^T (F/G, K) runs as (cols @ dY^T)^T for at most this many filters (per
# group) and from this many columns N*Ho*Wo: OpenBLAS SkylakeX, 2 threads, F/G, K, N*Ho*Wo -> ms dY @ cols^T
# against (cols @ dY^T)^T: 16, 150, 6400 (LeNet-5's second layer) 0.41 against 0.23; 64, 576, 16384 7.1 against
# 5.2; 128, 1152, 4096 5.1 against 4.6; 32, 27, 65536 2.1 against 1.9; but 256, 2304, 1024 4.0 against 6.0.
weight_grad_cols_first = (128, 4096)

__all__ = ["avg_pool_backward", "avg_pool_forward", "batch_norm_backward", "batch_norm_forward",
           "clamp", "clamp_backward", "clamp_forward", "col2im", "depthwise_backward", "depthwise_forward",
           "direct_conv", "direct_conv_backward", "im2col", "max_pool_backward", "max_pool_forward", "winograd_conv",
           "winograd_weight_grad", "winograd_weights"]
