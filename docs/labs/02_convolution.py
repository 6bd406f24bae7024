# %% [markdown]
# # Lab 2 — Convolution from scratch
#
# 1. a four-loop convolution on fixed inputs; 2. hand-set filters (greyscale, Sobel) on a photo;
# 3. im2col by hand and the convolution as one matrix multiply `W @ cols`; 4. the backward pass;
# 5. timings: your loops vs the reference im2col (array slicing) vs the framework's im2col (Numba).
# The framework's version: `minitorch_cnn/functional/conv.py`, kernels in `minitorch_cnn/kernels/`.
#
# Time: about 3 hours. You will be able to: write a convolution and its backward from the definition;
# turn it into one matrix multiply (im2col) and vectorise the column building; say why loops are slow.

# %%

import numpy as np
from labcheck import (
    QUICK,
    attempt,
    best_ms,
    check_close,
    check_conv_backward,
    check_conv_forward,
    check_im2col,
    report,
    save_figure,
    summary,
)

import minitorch_cnn as mt
from minitorch_cnn import functional as F
from minitorch_cnn.functional.conv import Conv2d as Im2colConv2d
from minitorch_cnn.functional.conv import plan_conv
from minitorch_cnn.kernels import cpu, reference
from minitorch_cnn.lab import sample_image

# %% [markdown]
# ## Exercise 1: the four-loop convolution
# `x (N, C, H, W)`, `w (F, C, kh, kw)`, `b (F,)` -> `(N, F, Ho, Wo)` with
# `Ho = (H + 2 pad - kh) // stride + 1`. Pad with zeros, then for every image, filter and output
# pixel, sum the window times the filter.

# %%
def conv_naive(x, w, b, stride, pad):
    """x: (N, C, H, W), w: (F, C, kh, kw), b: (F,) -> (N, F, Ho, Wo), with four loops."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, f, ho, wo), dtype=np.result_type(x, w))
    # BEGIN SOLUTION
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    for i in range(n):
        for k in range(f):
            for r in range(ho):
                for s in range(wo):
                    window = xp[i, :, r * stride:r * stride + kh, s * stride:s * stride + kw]
                    out[i, k, r, s] = (window * w[k]).sum() + b[k]
    # END SOLUTION
    return out


check_conv_forward(conv_naive)

# %% [markdown]
# ## Hand-set filters on a real photo
# A 1x1 convolution with weights (0.299, 0.587, 0.114) turns RGB into grey; the Sobel filters
# `[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]` and its transpose respond to vertical and horizontal edges.

# %%
photo, _ = sample_image("photo", size=None if not QUICK else 96, as_tensor=False)
rgb = photo * np.array([0.2470, 0.2435, 0.2616]).reshape(1, 3, 1, 1) + \
    np.array([0.4914, 0.4822, 0.4465]).reshape(1, 3, 1, 1)                 # undo the normalisation
grey_w = np.array([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)
sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)
edge_w = np.stack([sobel, sobel.T])[:, None]                               # (2, 1, 3, 3)
grey = F.conv2d(mt.Tensor(rgb), mt.Tensor(grey_w)).data
edges = F.conv2d(mt.Tensor(grey), mt.Tensor(edge_w), padding=1).data
check_close("greyscale conv vs weighted sum", grey[0, 0], np.tensordot([0.299, 0.587, 0.114], rgb[0], 1))
small = grey[:, :, :40, :40]
check_close("Sobel via your loops", conv_naive(small, edge_w, np.zeros(2), 1, 1),
            F.conv2d(mt.Tensor(small), mt.Tensor(edge_w), padding=1).data)

from matplotlib.figure import Figure  # noqa: E402  (only needed from here on)

fig = Figure(figsize=(12, 3.4))
panels = [(rgb[0].transpose(1, 2, 0).clip(0, 1), "photo", None), (grey[0, 0], "1x1 conv: grey", "gray"),
          (edges[0, 0], "Sobel x: vertical edges", "RdBu"), (edges[0, 1], "Sobel y: horizontal edges", "RdBu"),
          (np.hypot(*edges[0]), "edge magnitude", "magma")]
for i, (img, title, cmap) in enumerate(panels):
    ax = fig.add_subplot(1, 5, i + 1)
    ax.imshow(img, cmap=cmap)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
save_figure(fig, "02_convolution_sobel.png")

# %% [markdown]
# ## Exercise 2: im2col by hand
# Lay every receptive field out as one column: `cols[(c, i, j), (n, y, x)] = xpad[n, c, y*s + i, x*s + j]`,
# shape `(C*kh*kw, N*Ho*Wo)`. Then the whole convolution is `W.reshape(F, -1) @ cols`.

# %%
def im2col_naive(x, kh, kw, stride, pad):
    """x: (N, C, H, W) -> cols (C*kh*kw, N*Ho*Wo)."""
    n, c, h, wd = x.shape
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    cols = np.zeros((c * kh * kw, n * ho * wo), dtype=x.dtype)
    # BEGIN SOLUTION
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    for i in range(n):
        for r in range(ho):
            for s in range(wo):
                window = xp[i, :, r * stride:r * stride + kh, s * stride:s * stride + kw]
                cols[:, (i * ho + r) * wo + s] = window.reshape(-1)
    # END SOLUTION
    return cols


check_im2col(im2col_naive)

# %% [markdown]
# ## Exercise 3: vectorise it
# Your im2col loops over every image and output pixel: N*Ho*Wo Python iterations. Rewrite it with one loop
# over the kh*kw filter taps only: for tap (i, j), the input pixels it meets at every output position of
# every image form one strided slice of the padded input. Work out that slice, and where it goes in
# `cols` (viewed as `(C, kh, kw, N, Ho, Wo)`). The check and the timing below tell you if it is right.
#
# **Question 1.** How many Python-level iterations do the two versions make for a (64, 64, 32, 32)
# input and a 3x3 filter, stride 1, padding 1? Why is the second one fast even though it copies the same
# number of values?
#
# BEGIN SOLUTION
# *Answer.* The loops: 64 * 32 * 32 = 65,536 iterations, each a small slice and copy; the taps: 9, each
# one strided copy of 64 * 64 * 32 * 32 values done inside NumPy's C loops. The work per value is the same;
# what goes is the per-iteration interpreter overhead (about a microsecond each), which dominated.
# END SOLUTION

# %%
def im2col_vectorised(x, kh, kw, stride, pad):
    """x: (N, C, H, W) -> cols (C*kh*kw, N*Ho*Wo), with one loop over the kh*kw taps."""
    n, c, h, wd = x.shape
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    cols = np.zeros((c, kh, kw, n, ho, wo), dtype=x.dtype)
    # BEGIN SOLUTION
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xp[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride].transpose(1, 0, 2, 3)
    # END SOLUTION
    return cols.reshape(c * kh * kw, n * ho * wo)


check_im2col(im2col_vectorised)
xv = np.random.default_rng(5).standard_normal((4, 8, 16, 16) if QUICK else (64, 16, 32, 32))
loops_ms = attempt(lambda: best_ms(lambda: im2col_naive(xv, 3, 3, 1, 1), 1))
taps_ms = attempt(lambda: best_ms(lambda: im2col_vectorised(xv, 3, 3, 1, 1), 3))
if loops_ms is not None and taps_ms is not None:
    report(f"im2col of {xv.shape}: loops {loops_ms:.1f} ms, taps {taps_ms:.2f} ms; speed-up",
           f"{loops_ms / taps_ms:.0f}x", "> 3", loops_ms / taps_ms > 3)


def conv_im2col(x, w, b, stride, pad):
    """The convolution as one matrix multiply: (F, K) @ (K, N*Ho*Wo), reshaped to (N, F, Ho, Wo)."""
    n, f = x.shape[0], w.shape[0]
    ho, wo = (x.shape[2] + 2 * pad - w.shape[2]) // stride + 1, (x.shape[3] + 2 * pad - w.shape[3]) // stride + 1
    # BEGIN SOLUTION
    y = w.reshape(f, -1) @ im2col_naive(x, w.shape[2], w.shape[3], stride, pad) + b.reshape(-1, 1)
    return y.reshape(f, n, ho, wo).transpose(1, 0, 2, 3)
    # END SOLUTION


check_conv_forward(conv_im2col)

# %% [markdown]
# ## Exercise 4: the backward pass
# With `dout (N, F, Ho, Wo)`: `db = dout.sum((0, 2, 3))`; `dW = dout_mat @ cols.T`;
# `dcols = W_mat.T @ dout_mat`, then every column is added back onto the pixels it came from
# (col2im, the adjoint of im2col). Here with loops: each output pixel sends `dout * w` back to its window.

# %%
def conv_backward_naive(dout, x, w, stride, pad):
    """dout (N, F, Ho, Wo) -> (dx (N, C, H, W), dw (F, C, kh, kw), db (F,))."""
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    # BEGIN SOLUTION
    for i in range(x.shape[0]):
        for k in range(f):
            for r in range(dout.shape[2]):
                for s in range(dout.shape[3]):
                    rows, cols_ = slice(r * stride, r * stride + kh), slice(s * stride, s * stride + kw)
                    dw[k] += dout[i, k, r, s] * xp[i, :, rows, cols_]
                    dxp[i, :, rows, cols_] += dout[i, k, r, s] * w[k]
    # END SOLUTION
    dx = dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    return dx, dw, dout.sum(axis=(0, 2, 3))


check_conv_backward(conv_backward_naive)

# %% [markdown]
# ## Timings: loops, reference kernel, Numba kernel
# The same convolution three ways, float32: your four loops; the reference im2col (array slicing, one
# copy per filter tap) and one matrix multiply; the framework's im2col `Function` (the Numba kernel of
# `kernels/cpu/conv.py` writes each column once, in parallel, then the same multiply). We call that
# Function by name: `F.conv2d` would pick Winograd for this 3x3 stride-1 layer (`conv_path`), a
# different algorithm. Then the column building alone, reference against Numba.
# With `LABS_QUICK=1` the arrays are tiny and fixed per-call costs (Python, starting threads) are a large
# share of each time: there the two im2col routes can come out in either order. The lesson that holds at
# every size is the first one: any im2col is orders of magnitude faster than the loops.

# %%
shape = (2, 8, 16, 16) if QUICK else (8, 16, 32, 32)
rng = np.random.default_rng(0)
x = rng.standard_normal(shape).astype(np.float32)
w = rng.standard_normal((16, shape[1], 3, 3)).astype(np.float32)
b = np.zeros(16, np.float32)
col_args = ((3, 3), (1, 1), (1, 1), (1, 1), shape[2:])      # kernel, stride, padding, dilation, out_hw
print("F.conv2d would run:", plan_conv(x.shape, w.shape, 1, 1).algorithm, "- we time im2col explicitly")
naive = best_ms(lambda: conv_naive(x, w, b, 1, 1), repeat=1)
ref = best_ms(lambda: w.reshape(16, -1) @ reference.im2col(x, *col_args), 5)
framework = best_ms(lambda: Im2colConv2d((1, 1), (1, 1), (1, 1), 1, shape[2:])(mt.Tensor(x), mt.Tensor(w)), 5,
                    warmup=True)                                   # the warm-up call compiles the Numba kernel
cols_ref, cols_numba = best_ms(lambda: reference.im2col(x, *col_args), 5), \
    best_ms(lambda: cpu.im2col(x, *col_args), 5, warmup=True)
print(f"conv {shape} x (16, {shape[1]}, 3, 3): loops {naive:.1f} ms; reference im2col + matmul {ref:.2f} ms "
      f"({naive / ref:.0f}x faster); framework im2col Function {framework:.2f} ms ({naive / framework:.0f}x faster)")
print(f"building the columns alone: reference {cols_ref:.3f} ms, Numba {cols_numba:.3f} ms "
      f"(Numba {cols_ref / cols_numba:.1f}x the reference's speed{'; tiny arrays, see above' if QUICK else ''})")
report("both im2col routes at least 10x faster than the loops", f"{naive / max(ref, framework):.0f}x", "> 10",
       naive / max(ref, framework) > 10)

# %%
summary()   # "n of m checks passed"; as a script, exit status 1 when any failed
