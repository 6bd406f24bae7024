"""GPU kernels. Until CUDA sources land here, the GPU runs the reference kernels, which are
written with array slicing only and so run unchanged on CuPy arrays."""
from ..reference import (
                         avg_pool_backward,
                         avg_pool_forward,
                         batch_norm_backward,
                         batch_norm_forward,
                         clamp_forward,
                         col2im,
                         depthwise_backward,
                         depthwise_forward,
                         im2col,
                         max_pool_backward,
                         max_pool_forward,
)

__all__ = ["avg_pool_backward", "avg_pool_forward", "batch_norm_backward", "batch_norm_forward", "clamp_forward",
           "col2im", "depthwise_backward", "depthwise_forward", "im2col", "max_pool_backward", "max_pool_forward"]
