"""GPU kernels: CUDA C sources (``*.cu``) and the Python wrappers that launch them.

Same names and signatures as ``kernels/cpu`` and ``kernels/reference``; ``device.kernels(x)``
returns this module for CuPy arrays, and for NumPy arrays on the "cuda-emulator" device, where
the same kernels run on the host emulator (``emulator.py``). What is compiled for ``NAME.cu`` is
``launch.source("NAME")``: ``common.cuh`` (grid-stride loop, ``window_of``, ``block_sum``) and then the
file. GEMMs are not here: they stay ``xp.matmul`` (cuBLAS on the GPU).

What is verified where: every kernel is compared with ``kernels/reference`` on the emulator in CI (the
tier table of tests/kernels/test_tiers.py, beside the Numba kernels), and every ``.cu`` file is compiled
for sm_80 and sm_90 through CuPy's NVRTC path and ``nvcc -Xptxas -v`` (tests/kernels/test_cuda_compile.py).
Runs on a real GPU happen only in the ``@pytest.mark.gpu`` tests (the table's CuPy column among them),
which skip on machines without one.
"""
# cuBLAS runs a batch of products as one call: nothing to share out
from ..reference import batched_matmul, matmul_channels_first, summed_matmul_nt
from .conv import col2im, depthwise_backward, depthwise_forward, im2col
from .elementwise import clamp, clamp_backward, clamp_forward
from .loss import cross_entropy_forward
from .norm import batch_norm_backward, batch_norm_forward, batch_norm_forward_tracking, tracks_in_place
from .optim import adam_step, sgd_step
from .pool import avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward

# The convolution algorithms these kernels offer (functional.conv.conv_path asks for them).
conv_algorithms = ("im2col",)
# Kernels only the GPU has (not in __all__, the names every kernel module shares): a parameter group's fused
# optimizer step (optim/fused.py), batch norm's forward updating the running statistics in the same launch
# (functional/norm.py), cross-entropy's loss and gradient in one launch (functional/loss.py). On the CPU the
# same computations stay in NumPy: the optimizers' per-parameter rules, the running statistics, the loss.
GPU_ONLY = ("adam_step", "batch_norm_forward_tracking", "cross_entropy_forward", "sgd_step")
_GPU_ONLY = (adam_step, batch_norm_forward_tracking, cross_entropy_forward, sgd_step,   # imported for their callers
             tracks_in_place)
# A parameter group's optimizer step runs over the group packed flat, one launch per group (optim/fused.py).
pack_optimizer_groups = True
_PRODUCTS = (batched_matmul, matmul_channels_first, summed_matmul_nt)   # not in __all__: BLAS calls (reference.py)

__all__ = ["avg_pool_backward", "avg_pool_forward", "batch_norm_backward", "batch_norm_forward", "clamp",
           "clamp_backward", "clamp_forward", "col2im", "depthwise_backward", "depthwise_forward", "im2col",
           "max_pool_backward", "max_pool_forward"]
