"""2-D convolution: im2col + one matrix multiply, and the paths that beat it on some shapes.

A convolution is a matrix multiply in disguise. ``im2col`` lays every receptive
field out as one column, so that

    y[f, (n, y, x)] = sum_k  W[f, k] * cols[k, (n, y, x)],   k = (c, i, j)

is ``W @ cols`` over the whole batch at once. Its backward is two more matrix
multiplies (dW = dY @ cols^T, dcols = W^T @ dY) and ``col2im``, the adjoint of
``im2col``, which adds each column back onto the pixels it came from.

3x3 stride-1 convolutions can instead run as Winograd F(4x4, 3x3) in training (``WinogradConv2d``):
36 small matrix multiplies over transformed 6x6 tiles, 4x fewer multiplies than im2col (F(2x2, 3x3) in
evaluation, for its smaller float32 rounding: ``winograd_tile``).
Depthwise convolutions and those with few filters (``DirectConv2d``, LeNet-5's first layer) build no
matrix at all: each filter slides over the input planes (functional/conv_sliding.py); a 1x1
convolution needs no im2col either (``PointwiseConv2d``, functional/conv_pointwise.py).
``conv_path`` is the one place that picks the algorithm; ``plan_conv`` gives a ``ConvPlan``: that
algorithm, the output shape and the scratch memory each pass allocates, read by ``conv2d``,
``zoo.summary`` and the lab's Stepper alike.

``im2col``, ``col2im``, the Winograd transforms and the depthwise and direct loops are kernels
(``minitorch_cnn/kernels``): ``kernels/reference.py`` has them in plain array slicing,
``kernels/cpu`` in Numba.
"""
import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .. import workspace
from ..autograd import Function
from ..device import device as as_device
from ..device import get_array_module, get_default_device, kernels
from ..tensor import as_tensor
from .checks import check_ndim, check_positive, output_size, pair, with_bias_grad
from .conv_pointwise import PointwiseConv2d
from .conv_scratch import scratch_of
from .conv_sliding import DepthwiseConv2d, DirectConv2d, _add_bias


class Conv2d(Function):
    """x: (N, C, H, W), w: (F, C/groups, kh, kw), b: (F,) -> (N, F, Ho, Wo).

    With groups G the channels split into G independent convolutions, each its own matrix multiply
    W_g (F/G, K) @ cols_g (K, N*Ho*Wo). Every product has 2-D operands (on a GPU cuBLAS reads a transposed
    operand through a flag and copies nothing) except the forward's per-image form: with ``per_image``
    (many output pixels per image, on a device whose BLAS runs such products well) y[n] = W @ cols_n is
    written straight into its place in the NCHW output; otherwise one product over the whole batch gives
    (F, N*Ho*Wo) and a transposing copy, with the bias added on the way, makes it NCHW.
    The column matrix is kept for backward while the kept ones fit a budget (``workspace.keep``:
    LeNet's layers); a larger one lives in a shared workspace and backward rebuilds it,
    one more im2col instead of holding a matrix often far larger than the activation.
    """
    algorithm = "im2col"   # the ConvPlan algorithm this Function runs
    def __init__(self, stride, padding, dilation, groups, out_hw, per_image=False):
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.groups, self.out_hw, self.per_image = groups, out_hw, per_image

    def _cols(self, x, out=None):
        """im2col of x: (G, K, N*Ho*Wo), K = C/G * kh * kw; into ``out``, else the shared workspace."""
        xp = get_array_module(x)
        if out is None:
            out = workspace.borrow("im2col", self._cols_shape(x), x.dtype, xp)
        cols = kernels(x).im2col(x, self.kernel, self.stride, self.padding, self.dilation, self.out_hw, out=out)
        return cols.reshape(self.w_mat.shape[0], self.w_mat.shape[2], -1)

    def _cols_shape(self, x):
        g, _, k = self.w_mat.shape
        return (g * k, x.shape[0] * self.out_hw[0] * self.out_hw[1])

    def forward(self, x, w, b=None):
        xp = get_array_module(x)
        g, (f, cg, kh, kw), n = self.groups, w.shape, x.shape[0]
        self.x, self.kernel = x, (kh, kw)
        self.w_mat = w.reshape(g, f // g, cg * kh * kw)
        kept = workspace.keep(self._cols_shape(x), x.dtype, xp) if self.needs_input_grad[1] else None
        cols = self._cols(x, out=kept)
        self.kept_cols = None if kept is None else cols
        y = xp.empty((n, f) + tuple(self.out_hw), x.dtype)
        if self.per_image and g == 1:   # (F, K) @ (N, K, Ho*Wo) -> y's (N, F, Ho*Wo): no copy of the output
            pixels = self.out_hw[0] * self.out_hw[1]
            kernels(x).batched_matmul(self.w_mat[0], cols[0].reshape(-1, n, pixels).transpose(1, 0, 2),
                                      y.reshape(n, f, -1))
            return _add_bias(y, b)
        y_mat = workspace.borrow("conv output", (g, f // g, cols.shape[2]), x.dtype, xp)
        for i in range(g):              # one 2-D product per group: (F/G, K) @ (K, N*Ho*Wo)
            xp.matmul(self.w_mat[i], cols[i], out=y_mat[i])
        return _channels_first_to_nchw(y_mat.reshape(f, n, -1), b, out=y)

    def _weight_grad(self, gy_mat):
        """dW = dY @ cols^T, cols kept or rebuilt: gy_mat (G, F/G, N*Ho*Wo) -> (F, C/G, kh, kw).

        Where the device's kernels say so (``weight_grad_cols_first``: few filters, many columns) it runs as
        (cols @ dY^T)^T, the same sums with the BLAS's operands the other way round, and a weight-sized copy."""
        xp, (g, f, k) = get_array_module(gy_mat), self.w_mat.shape
        cols = self._cols(self.x) if self.kept_cols is None else self.kept_cols
        most_filters, least_columns = getattr(kernels(gy_mat), "weight_grad_cols_first", (0, 0))
        if f <= most_filters and gy_mat.shape[2] >= least_columns:
            gw_t = xp.empty((g, k, f), gy_mat.dtype)
            for i in range(g):          # (K, N*Ho*Wo) @ (F/G, N*Ho*Wo)^T
                xp.matmul(cols[i], gy_mat[i].T, out=gw_t[i])
            return xp.ascontiguousarray(gw_t.transpose(0, 2, 1)).reshape(g * f, -1, *self.kernel)
        gw = xp.empty((g, f, k), gy_mat.dtype)
        for i in range(g):              # (F/G, N*Ho*Wo) @ (K, N*Ho*Wo)^T: 2-D, the transpose a BLAS flag
            xp.matmul(gy_mat[i], cols[i].T, out=gw[i])
        return gw.reshape(g * f, -1, *self.kernel)

    def backward(self, gy):
        xp, (g, f, k) = get_array_module(gy), self.w_mat.shape
        gy_mat = gy.transpose(1, 0, 2, 3).reshape(g, f, -1)                       # (G, F/G, N*Ho*Wo), a copy
        gx = gw = None
        if self.needs_input_grad[1]:
            gw = self._weight_grad(gy_mat)
            self.kept_cols = None                                                 # free it before col2im
        if self.needs_input_grad[0]:   # dcols = W^T @ dY, then col2im adds each column back onto its window
            gcols = workspace.borrow("im2col", (g, k, gy_mat.shape[2]), gy.dtype, xp)
            for i in range(g):
                xp.matmul(self.w_mat[i].T, gy_mat[i], out=gcols[i])
            gx = kernels(gy).col2im(gcols.reshape(g * k, -1), self.x.shape, self.kernel, self.stride,
                                    self.padding, self.dilation, self.out_hw)
        return with_bias_grad(self, (gx, gw), gy, bias_axis=1)


def _channels_first_to_nchw(y_mat, b, out):
    """y_mat (F, N, Ho*Wo) -> out (N, F, Ho, Wo), plus the bias b (F,) per channel when given: one pass."""
    xp = get_array_module(out)
    n, f = out.shape[:2]
    src, dst = y_mat.transpose(1, 0, 2), out.reshape(n, f, -1)
    if b is None:
        dst[...] = src
    else:
        xp.add(src, b.reshape(1, f, 1), out=dst)
    return out


class WinogradConv2d(Function):
    """x: (N, C, H, W), w: (F, C, 3, 3), b: (F,) -> (N, F, Ho, Wo): 3x3, stride 1, dilation 1, groups 1.

    Winograd F(m x m, 3x3) (the math is in kernels/reference.py; m from ``winograd_tile``): y = A^T [U * V] A
    per m x m output tile, with U = G w G^T and V = B^T d B, summed over input channels as (m+2)^2 matrix
    multiplies (36 for m = 4, 16 for m = 2).
    dx is itself such a convolution: of gy, padded by 2 - p, with every filter flipped and the
    input and output channels swapped. dW runs the transforms backwards: dM = A dY A^T per output
    tile, dU[k] = dM[k] @ V[k]^T summed over the tiles, dW = G^T dU G (36 products per 4x4 tile, not im2col's 144).
    """
    algorithm = "winograd"   # the ConvPlan algorithm this Function runs
    def __init__(self, padding, out_hw):
        self.padding, self.out_hw = padding, out_hw

    def forward(self, x, w, b=None):
        k = kernels(x)
        self.x, self.w = x, w
        self.tile = winograd_tile(k, backward=True in self.needs_input_grad, out_hw=self.out_hw)
        return k.winograd_conv(x, k.winograd_weights(w, self.tile), self.padding, self.out_hw, b)

    def backward(self, gy):
        k, (ph, pw), tile = kernels(gy), self.padding, self.tile
        gx = gw = None
        if self.needs_input_grad[1]:
            gw = k.winograd_weight_grad(self.x, gy, self.padding, tile)
        if self.needs_input_grad[0]:
            flipped = self.w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)               # (C, F, 3, 3)
            gx = k.winograd_conv(gy, k.winograd_weights(flipped, tile), (2 - ph, 2 - pw), self.x.shape[2:])
        return with_bias_grad(self, (gx, gw), gy, bias_axis=1)


def winograd_tile(kernels, backward, out_hw=None):
    """The m of F(m x m, 3x3) a Winograd convolution runs on a device with these ``kernels``: of the tiles they
    offer for an output map of ``out_hw`` (``winograd_from_pixels``: each tile's least pixels per image), the
    largest where a backward follows (training), the smallest for a forward alone (evaluation, inference).

    F(4x4) does 1.78x fewer multiplies than F(2x2) but rounds more in float32: the products' sums meet larger
    transform entries (8, 1/24) on the way out, 1-3e-6 relative a layer against F(2x2)'s few 1e-7. Through
    VGG-16's 13 layers the evaluation logits measured 1.3e-5 from exact with F(4x4) (PyTorch's own float32:
    1.5e-6), outside the zoo's 1e-5 evaluation parity; a training step's bound is 1e-4, and its speed is where
    F(4x4) pays (VGG-16's step 1.22x -> 1.06x PyTorch's, 2 cores, AVX-512, 2026-12-07).
    """
    tiles = _winograd_tiles_for(kernels, out_hw) or [min(_winograd_tiles_for(kernels, None))]
    return max(tiles) if backward else min(tiles)   # (run below every threshold, as a test may: the smallest)


def _winograd_tiles_for(kernels, out_hw):
    """The tiles ``kernels`` offer (``winograd_tiles``, else F(2x2)) for an output map of ``out_hw`` (None: all)."""
    tiles, least = getattr(kernels, "winograd_tiles", (2,)), getattr(kernels, "winograd_from_pixels", {})
    if out_hw is None:
        return tiles
    return [m for m in tiles if out_hw[0] * out_hw[1] >= least.get(m, 0)]


@dataclass(frozen=True)
class ConvPlan:
    """Which algorithm a convolution runs, what shape comes out and what scratch memory it allocates.

    Built by ``plan_conv``; ``conv2d`` runs ``algorithm``, ``zoo.summary`` and the lab's Stepper report it.
    ``forward_scratch`` / ``backward_scratch`` list the arrays each pass allocates (``Scratch``), with
    ``forward_bytes`` / ``backward_bytes`` their sums. Computed on first use: conv2d pays for none of it.
    """
    algorithm: str            # "im2col" | "pointwise" | "depthwise" | "winograd" | "direct"
    x_shape: tuple            # (N, C, H, W)
    weight_shape: tuple       # (F, C/groups, kh, kw)
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int
    out_hw: tuple             # (Ho, Wo)
    dtype: object = np.float32
    per_image: bool = False   # im2col's forward: one product per image (see Conv2d) rather than one per batch
    xp: object = field(default=np, repr=False)   # the array module of the device it runs on (its memory budget)
    winograd_tile: int = 4    # winograd: the m of F(m x m, 3x3) a training step runs (``winograd_tile``)

    @property
    def out_shape(self):
        """(N, F, Ho, Wo)."""
        return (self.x_shape[0], self.weight_shape[0]) + tuple(self.out_hw)

    @property
    def itemsize(self):
        return np.dtype(self.dtype).itemsize

    @property
    def cols_shape(self):
        """(G*K, N*Ho*Wo), K = C/G * kh * kw: the column matrix im2col builds; None on the other paths."""
        if self.algorithm != "im2col":
            return None
        f, cg, kh, kw = self.weight_shape
        return (cg * kh * kw * self.groups, self.x_shape[0] * self.out_hw[0] * self.out_hw[1])

    @property
    def gemm(self):
        """(A shape, B shape) of the matrix multiplies ``A @ B`` the forward runs (None: depthwise and direct run none).

        im2col: (G, F/G, K) @ (G, K, N*Ho*Wo) (with ``per_image``: image by image); pointwise: (F, C) @ (N, C, H*W),
        one per image;
        winograd: ((m+2)^2, F, C) @ ((m+2)^2, C, tiles), the (m+2)^2 products U[k] @ V[k], one (m+2)x(m+2) input
        tile per m x m output tile (m = ``winograd_tile``), N * ceil(Ho/m) * ceil(Wo/m) tiles (the kernel runs
        them in chunks)."""
        (n, c, h, w), (f, cg, kh, kw), g, (ho, wo) = self.x_shape, self.weight_shape, self.groups, self.out_hw
        m = self.winograd_tile
        return {"im2col": ((g, f // g, cg * kh * kw), (g, cg * kh * kw, n * ho * wo)),
                "pointwise": ((f, c), (n, c, h * w)),
                "winograd": (((m + 2) ** 2, f, c), ((m + 2) ** 2, c, n * -(-ho // m) * -(-wo // m)))
                }.get(self.algorithm)

    @property
    def may_keep_columns(self):
        """im2col: whether the columns alone fit ``workspace.keep``'s budget, so the forward may keep them for
        backward (kept only if the budget has that much left then: other layers' kept columns count)."""
        return (self.algorithm == "im2col"
                and math.prod(self.cols_shape) * self.itemsize <= workspace.keep_budget(self.xp))

    @cached_property
    def forward_scratch(self):
        return scratch_of(self, "forward")

    @cached_property
    def backward_scratch(self):
        """Assuming dx and dW are both wanted (a network's first layer pays no dx: im2col then skips dcols)."""
        return scratch_of(self, "backward")

    @property
    def forward_bytes(self):
        return sum(s.nbytes for s in self.forward_scratch)

    @property
    def backward_bytes(self):
        return sum(s.nbytes for s in self.backward_scratch)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Like ``torch.nn.functional.conv2d``: x (N, C, H, W), weight (F, C/groups, kh, kw) -> (N, F, Ho, Wo).

    ``plan_conv`` checks the shapes and picks the algorithm; this runs the Function it names."""
    x, weight = as_tensor(x), as_tensor(weight)
    for name, t in (("input", x), ("weight", weight)):   # the kernels are compiled for these two dtypes only:
        if t.dtype not in (np.float32, np.float64):           # an int or float16 array would fail deep inside one
            raise TypeError(f"conv2d: expected a float32 or float64 {name}, got {t.dtype}")
    plan = plan_conv(x.shape, weight.shape, stride, padding, dilation, groups, x.dtype, device=x.data)
    if bias is not None:
        bias = as_tensor(bias)
        if tuple(bias.shape) != (plan.weight_shape[0],):
            raise ValueError(f"conv2d: bias must have shape ({plan.weight_shape[0]},), got {tuple(bias.shape)}")
    inputs = (x, weight) if bias is None else (x, weight, bias)
    if plan.algorithm == "winograd":
        return WinogradConv2d(plan.padding, plan.out_hw)(*inputs)
    if plan.algorithm == "depthwise":
        return DepthwiseConv2d(plan.stride, plan.padding, plan.dilation, plan.out_hw)(*inputs)
    if plan.algorithm == "direct":
        return DirectConv2d(plan.padding, plan.dilation, plan.out_hw)(*inputs)
    if plan.algorithm == "pointwise":
        return PointwiseConv2d(plan.per_image)(*inputs)
    return Conv2d(plan.stride, plan.padding, plan.dilation, groups, plan.out_hw, plan.per_image)(*inputs)


WINOGRAD_MIN_CHANNELS = 16   # below this Winograd's matrix multiplies are too thin (an RGB stem) to pay
# The direct kernel reuses an input pixel across a block of 4 filters, a matrix multiply each column across all
# of them, so im2col's product gains on it as F grows. One thread, batch 64, forward + backward (dW, db): 3 -> 6
# filters 5x5 at 32x32 3.0 ms direct against 4.7 ms im2col, 6 -> 8 5x5 at 14x14 1.3 against 1.9, 3 -> 8 3x3
# at 32x32 2.9 against 3.2. With the filters in blocks (kernels/cpu/direct.py), 2 threads: LeNet-5's second
# layer, 6 -> 16 5x5 at 14x14, forward + backward with dx 1.7 against 2.5-2.6 ms, forward 0.32 against 0.95-1.1
# (its im2col alone, 0.96 M elements, is 0.34); the model's train step 7.1 -> 5.6-6.5 ms, evaluation forward
# 2.7-3.1 -> 2.0-2.1 (A/B in one process). It is the choice only from DIRECT_MIN_COLUMNS column-matrix
# elements (2 MB in float32): it pays below too (LeNet-5's first layer at batch 4, 0.24 M elements: 0.24
# against 0.41 ms), but there the matrix is cheap, and the small examples of the labs keep the im2col they
# teach.
DIRECT_MAX_FILTERS, DIRECT_MIN_COLUMNS = 16, 1 << 19


def conv_path(in_channels, weight_shape, stride, padding, groups, dilation=(1, 1), like=None, out_hw=None,
              columns=0):
    """Which algorithm runs a convolution: 'depthwise' (one filter set per channel), 'pointwise'
    (1x1, stride 1, no padding: a plain matrix multiply), 'winograd' (3x3, stride 1, dilation 1,
    groups 1, padding <= 2, at least WINOGRAD_MIN_CHANNELS input channels, on a device whose kernels
    offer it, with at least the least ``winograd_from_pixels`` of their tiles per image when ``out_hw`` is
    given), 'direct' (otherwise stride 1, groups 1, at most DIRECT_MAX_FILTERS filters, a column matrix of
    ``columns`` >= DIRECT_MIN_COLUMNS elements, on a device whose kernels offer it) or 'im2col' (everything else).
    ``like``: an array on that device, a device (``.kernels``) or its name; None: the default device.
    ``columns``: the elements of the column matrix im2col would build, C*kh*kw * N*Ho*Wo.
    The one place the choice is made; ``plan_conv`` asks it."""
    f, cg, kh, kw = weight_shape
    if groups > 1 and groups == in_channels and cg == 1:
        return "depthwise"
    if groups == 1 and (kh, kw) == (1, 1) and tuple(stride) == (1, 1) and tuple(padding) == (0, 0):
        return "pointwise"
    k = _kernels_of(like)
    offered = getattr(k, "conv_algorithms", ("im2col",))
    big_enough = bool(_winograd_tiles_for(k, out_hw))
    if ("winograd" in offered and groups == 1 and (kh, kw) == (3, 3)
            and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1) and max(padding) <= 2
            and in_channels >= WINOGRAD_MIN_CHANNELS and big_enough):
        return "winograd"
    if ("direct" in offered and groups == 1 and tuple(stride) == (1, 1) and f <= DIRECT_MAX_FILTERS
            and columns >= DIRECT_MIN_COLUMNS):
        return "direct"
    return "im2col"


def plan_conv(x_shape, weight_shape, stride=1, padding=0, dilation=1, groups=1, dtype=np.float32, device=None):
    """The ``ConvPlan`` of a convolution: x (N, C, H, W), weight (F, C/groups, kh, kw) on ``device``.

    ``device``: where it runs, which decides whether Winograd is offered: None (the default device),
    a device object with ``.kernels``, or an array living there. Raises the errors ``conv2d`` raises for
    shapes that do not fit together."""
    layer = "conv2d"
    stride, padding = pair(stride, layer, "stride"), pair(padding, layer, "padding")
    dilation = pair(dilation, layer, "dilation")
    check_positive(layer, stride=stride, dilation=dilation)
    if min(padding) < 0:
        raise ValueError(f"{layer}: padding must be >= 0, got {padding}")
    x_shape, weight_shape = tuple(x_shape), tuple(weight_shape)
    check_ndim(x_shape, 4, layer)
    check_ndim(weight_shape, 4, layer + " weight", "(F, C/groups, kh, kw)")
    f, cg, kh, kw = weight_shape
    if groups < 1 or x_shape[1] % groups or f % groups:
        raise ValueError(f"{layer}: groups={groups} must divide both the input channels {x_shape[1]} "
                         f"and the output channels {f}")
    if x_shape[1] != cg * groups:
        raise ValueError(f"{layer}: weight {weight_shape} with groups={groups} expects input "
                         f"(N, {cg * groups}, H, W), got {x_shape}")
    out_hw = tuple(output_size(x_shape[2 + a], (kh, kw)[a], stride[a], padding[a], dilation[a], layer, x_shape)
                   for a in range(2))
    algorithm = conv_path(x_shape[1], weight_shape, stride, padding, groups, dilation, like=device, out_hw=out_hw,
                          columns=x_shape[1] * kh * kw * x_shape[0] * out_hw[0] * out_hw[1])
    # The device's kernels say from how many output pixels per image its BLAS runs a product per image
    # (kernels/cpu). Without that number (a GPU): im2col over the whole batch (its per-image operand is a
    # strided view that cuBLAS's batched GEMM would copy first), pointwise image by image (x is its operand).
    k = _kernels_of(device)
    from_pixels = getattr(k, "gemm_per_image_from", {}).get(algorithm)
    pixels = out_hw[0] * out_hw[1]
    per_image = groups == 1 and (pixels >= from_pixels if from_pixels is not None else algorithm == "pointwise")
    return ConvPlan(algorithm, x_shape, weight_shape, stride, padding, dilation, groups, out_hw, dtype, per_image,
                    _array_module_of(device), winograd_tile(k, backward=True, out_hw=out_hw)
                    if algorithm == "winograd" else 4)


def _array_module_of(device):
    """NumPy or CuPy: the array module of ``device`` (None: the default device; a Device, its name or an array)."""
    if device is None or isinstance(device, str):
        device = get_default_device() if device is None else as_device(device)
    return device.xp if hasattr(device, "xp") else get_array_module(device)


def _kernels_of(device):
    """The kernel module of ``device``: None (the default device), a Device or its name, or an array there."""
    if device is None or isinstance(device, str):
        device = get_default_device() if device is None else as_device(device)
    return device.kernels if hasattr(device, "kernels") else kernels(device)
