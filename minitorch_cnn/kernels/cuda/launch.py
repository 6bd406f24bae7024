"""How the wrappers reach a kernel: load a ``.cu`` file once, pick the float32 / float64 variant,
choose the launch shape, and pass every scalar as an explicitly sized NumPy scalar.

CuPy (and the emulator, which checks) hands arguments to the kernel as raw bytes: a Python int
would be passed as a 64-bit value to an ``int`` parameter, so every scalar goes through ``i32``.
The module object comes from ``device.cuda_module``: ``cupy.RawModule`` for CuPy arrays, the
host emulator's ``RawModule`` for NumPy arrays (the "cuda-emulator" device).
"""
import functools
from pathlib import Path

import numpy as np

from ...device import cuda_module

THREADS = 256          # threads per block of the elementwise (grid-stride) kernels
REDUCE_THREADS = 256   # at most REDUCE_THREADS of common.cuh: block_sum's shared-memory tree's size
WARP = 32
MAX_BLOCKS = 65535     # a grid never needs more: the kernels' grid-stride loops cover the rest
_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
HERE = Path(__file__).parent   # the .cu files and common.cuh


@functools.cache
def source(file):
    """What gets compiled for ``kernels/cuda/<file>.cu``: ``common.cuh`` (GRID_STRIDE, window_of, block_sum),
    then the file. NVRTC (CuPy), nvcc (compile_check.py) and the emulator all compile this one text, so the
    shared code is written once and each kernel file is still one unit. The ``#line`` markers make an error
    name the file and line it is on, not a line of the joined text."""
    if not (HERE / f"{file}.cu").is_file():
        raise FileNotFoundError(f"CUDA kernels: no kernels/cuda/{file}.cu (the files are "
                                f"{', '.join(sorted(p.stem for p in HERE.glob('*.cu')))})")
    return "".join(f'#line 1 "{name}"\n{(HERE / name).read_text()}\n' for name in ("common.cuh", f"{file}.cu"))


def load_kernel(file, name, dtype, like):
    """The compiled kernel ``name`` of ``file``.cu for ``dtype``, on the device of array ``like``."""
    suffix = _SUFFIX.get(np.dtype(dtype))
    if suffix is None:
        raise TypeError(f"CUDA kernel {name}: expected float32 or float64 arrays, got {np.dtype(dtype)}")
    return cuda_module(source(file), like).get_function(f"{name}_{suffix}")


def i32(*values):
    """Sizes and settings as C ints, checked to fit."""
    out = []
    for v in values:
        if not -2**31 <= int(v) < 2**31:
            raise ValueError(f"CUDA kernels take 32-bit sizes; {v} does not fit")
        out.append(np.int32(v))
    return out


def elementwise(fn, total, args):
    """Launch a grid-stride kernel over ``total`` items: THREADS per block, enough blocks to cover them."""
    if total > 0:
        fn((max(1, min(MAX_BLOCKS, -(-int(total) // THREADS))),), (THREADS,), args)


def per_block(fn, count, args, values):
    """Launch a block-reduction kernel: one block per item (``count`` items), each summing ``values``
    values: as many threads as that needs, in whole warps, up to REDUCE_THREADS (idle threads would
    only add zeros, on the GPU and, slowly, on the emulator)."""
    if count > 0:
        threads = min(REDUCE_THREADS, WARP * max(1, -(-int(values) // WARP)))
        fn((max(1, min(MAX_BLOCKS, int(count))),), (threads,), args)
