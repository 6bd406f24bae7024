# %% [markdown]
# # Lab 8 — GPU kernels
#
# The framework has three tiers of the same kernels (`minitorch_cnn/kernels/`): `reference.py` (array
# slicing, runs on NumPy and CuPy), `cpu/` (Numba loops, compiled, threaded) and `cuda/` (CUDA C run
# through CuPy). A CUDA kernel is the body of a loop: each *thread* computes one element, found from
# its index `i = blockIdx.x * blockDim.x + threadIdx.x`. The Numba twin writes the loop out with `prange`.
# Here you write ReLU6 and im2col as one-thread-per-element functions, check them, compile them with
# Numba, and read (and, when possible, run) the CUDA versions next to their Numba twins.
#
# Time: about 2 hours. You will be able to: write a kernel as the body of a loop over threads; map a
# thread index to the element it owns; read a CUDA kernel beside its Numba twin.

# %%
import inspect
from pathlib import Path

import numba
import numpy as np
from labcheck import QUICK, best_ms, check_close, check_im2col_kernel, check_relu6_kernel, report, save_figure, summary

import minitorch_cnn
from minitorch_cnn.device import device, gpu_available, to_numpy, using_device
from minitorch_cnn.kernels import cpu, reference

CUDA_DIR = Path(minitorch_cnn.__file__).parent / "kernels" / "cuda"


def side_by_side(left_title, left, right_title, right, width=60):
    """Print two sources in two columns."""
    a, b = left.splitlines(), right.splitlines()
    print(f"{left_title:<{width}} | {right_title}")
    print("-" * width + "-+-" + "-" * width)
    for i in range(max(len(a), len(b))):
        la = a[i] if i < len(a) else ""
        print(f"{la[:width]:<{width}} | {b[i] if i < len(b) else ''}")


def cuda_source(name):
    return (CUDA_DIR / name).read_text()


# %% [markdown]
# ## Exercise 1: ReLU6, one thread per element
# Thread i reads x[i], writes y[i] = min(max(x, 0), 6) and mask[i] = 0 < x < 6 (where the gradient is 1).

# %%
def relu6_thread(i, x, y, mask):
    # BEGIN SOLUTION
    v = x[i]
    y[i] = min(max(v, 0.0), 6.0)
    mask[i] = 0.0 < v < 6.0
    # END SOLUTION


def launch(thread, n, *args):
    """What a GPU does with a grid of n threads, one after the other."""
    for i in range(n):
        thread(i, *args)


check_relu6_kernel(lambda x, y, mask: launch(relu6_thread, x.size, x, y, mask))

# %% [markdown]
# The same function compiled by Numba, with the launch loop as a `prange` (threads on the CPU's cores).

# %%
relu6_jit = numba.njit(relu6_thread)


@numba.njit(parallel=True)
def relu6_launch(x, y, mask):
    for i in numba.prange(x.size):
        relu6_jit(i, x, y, mask)


check_relu6_kernel(relu6_launch)
n = 1 << (18 if QUICK else 23)
x = np.random.default_rng(0).standard_normal(n).astype(np.float32) * 4
y, mask = np.empty_like(x), np.empty(n, np.bool_)


timings = {"your Numba kernel": best_ms(lambda: relu6_launch(x, y, mask), 5, warmup=True),
           "reference (NumPy clip)": best_ms(lambda: reference.clamp_forward(x, 6.0), 5, warmup=True),
           "framework Numba kernel": best_ms(lambda: cpu.clamp_forward(x, 6.0), 5, warmup=True)}
for name, ms in timings.items():
    print(f"ReLU6 on {n:,} floats: {name:<24} {ms:7.2f} ms")

# %% [markdown]
# **Question 1.** Your Numba ReLU6 and NumPy's clip do the same arithmetic. Where does the difference in
# their timings come from, and why does it grow with the array?
#
# BEGIN SOLUTION
# *Answer.* `np.clip` makes one pass for y and the comparisons make more passes and temporary arrays for
# the mask; the kernel reads x once and writes y and mask in the same pass, on all cores (`prange`). Once
# the arrays are larger than the caches the time is memory traffic, so fewer passes and more cores win.
# END SOLUTION

# %% [markdown]
# ## Exercise 2: im2col, one thread per column element
# Thread t fills `cols[r, col]` with `r = (c, i, j)` and `col = (n, y, x)`: the input pixel
# `x[n, c, y*s + i - p, x*s + j - p]`, or 0 when that falls in the padding.

# %%
def im2col_thread(t, x, cols, kh, kw, s, p, ho, wo):
    n_cols = cols.shape[1]
    r, col = t // n_cols, t % n_cols
    # BEGIN SOLUTION
    c, i, j = r // (kh * kw), (r // kw) % kh, r % kw
    n, rest = col // (ho * wo), col % (ho * wo)
    oy, ox = rest // wo, rest % wo
    iy, ix = oy * s + i - p, ox * s + j - p
    inside = 0 <= iy < x.shape[2] and 0 <= ix < x.shape[3]
    cols[r, col] = x[n, c, iy, ix] if inside else 0.0
    # END SOLUTION


check_im2col_kernel(lambda x, cols, *a: launch(im2col_thread, cols.size, x, cols, *a))

# %% [markdown]
# ## The CUDA kernels next to their Numba twins
# `kernels/cuda/*.cu` hold the GPU twins of the Numba kernels. We print one next to its Numba code, then
# run them: on a GPU through CuPy, else through the CPU emulator of those kernels
# (`mt.using_device("cuda-emulator")`), and compare with the reference.
# The loop header `GRID_STRIDE(i, size)` is not in elementwise.cu: it is defined once in `common.cuh`,
# which the launcher (`kernels/cuda/launch.py`, `source()`) puts in front of every `.cu` file before
# NVRTC, nvcc or the emulator compile it.

# %%
numba_relu6 = inspect.getsource(cpu.elementwise).split("@kernel", 1)[1].split("def clamp_forward")[0]
side_by_side("Numba: kernels/cpu/elementwise.py", numba_relu6,
             "CUDA: kernels/cuda/elementwise.cu", cuda_source("elementwise.cu"))
print("\nfrom kernels/cuda/common.cuh:")
print(next(part for part in cuda_source("common.cuh").split("\n\n") if "#define GRID_STRIDE" in part))


def run_cuda_kernels():
    """Run ReLU6 and im2col through the CUDA wrappers; returns a line saying where, or why not."""
    if not list(CUDA_DIR.glob("*.cu")):
        return "skipped: no CUDA sources (kernels/cuda/*.cu) in this checkout"
    from minitorch_cnn.kernels import cuda
    xs = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32) * 4
    args = ((3, 3), (1, 1), (1, 1), (1, 1), (8, 8))
    where, on = ("the GPU (CuPy)", device("cuda")) if gpu_available() else ("the CUDA emulator",
                                                                             device("cuda-emulator"))
    try:
        with using_device(on):
            y, m = cuda.clamp_forward(on.send(xs), 6.0)
            cols = cuda.im2col(on.send(xs), *args)
    except RuntimeError as err:   # the emulator compiles the kernels with g++
        return f"skipped: no GPU and no CUDA emulator here ({err})"
    want_y, want_m = reference.clamp_forward(xs, 6.0)
    check_close("CUDA relu6 y", to_numpy(y), want_y)
    check_close("CUDA im2col", to_numpy(cols), reference.im2col(xs, *args))
    report("CUDA relu6 mask mismatches", int((to_numpy(m) != want_m).sum()), "== 0",
           (to_numpy(m) == want_m).all())
    return f"ran on {where}"


print("CUDA part:", run_cuda_kernels())

from matplotlib.figure import Figure  # noqa: E402

fig = Figure(figsize=(7, 3))
ax = fig.add_subplot()
ax.barh(list(timings), list(timings.values()), color=["tab:green", "tab:gray", "tab:blue"])
ax.set_xlabel("ms (best of 5)")
ax.set_title(f"ReLU6 on {n:,} float32 values")
save_figure(fig, "08_gpu_kernels_relu6_timing.png")

# %%
summary()   # "n of m checks passed"; as a script, exit status 1 when any failed
