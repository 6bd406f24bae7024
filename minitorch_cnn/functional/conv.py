"""2-D convolution: im2col + one matrix multiply, and a dedicated depthwise path.

A convolution is a matrix multiply in disguise. ``im2col`` lays every receptive
field out as one column, so that

    y[f, (n, y, x)] = sum_k  W[f, k] * cols[k, (n, y, x)],   k = (c, i, j)

is ``W @ cols`` over the whole batch at once. Its backward is two more matrix
multiplies (dW = dY @ cols^T, dcols = W^T @ dY) and ``col2im``, the adjoint of
``im2col``, which adds each column back onto the pixels it came from.

3x3 stride-1 convolutions can instead run as Winograd F(2x2, 3x3) (``WinogradConv2d``):
16 small matrix multiplies over transformed 4x4 tiles, 2.25x fewer multiplies than im2col.
``conv_path`` is the one place that picks the algorithm.

``im2col``, ``col2im``, the Winograd transforms and the depthwise loops are kernels
(``minitorch_cnn/kernels``): ``kernels/reference.py`` has them in plain array slicing,
``kernels/cpu`` in Numba.
"""
from .. import workspace
from ..autograd import Function
from ..backend import get_array_module, kernels
from ..tensor import as_tensor
from .checks import check_ndim, check_positive, output_size, pair, with_bias_grad


def _add_bias(y, b):
    """y (N, F, Ho, Wo) + b (F,) per output channel, in place; b may be None (no bias)."""
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


class Conv2d(Function):
    """x: (N, C, H, W), w: (F, C/groups, kh, kw), b: (F,) -> (N, F, Ho, Wo).

    With groups G the channels split into G independent convolutions; they run as
    one batched matrix multiply (G, F/G, K) @ (G, K, N*Ho*Wo), not a loop (in the forward
    one product per image, each written straight into its place in the NCHW output).
    The column matrix is kept for backward while the kept ones fit a budget (``workspace.keep``:
    LeNet's layers); a larger one lives in a shared workspace and backward rebuilds it,
    one more im2col instead of holding a matrix often far larger than the activation.
    """
    def __init__(self, stride, padding, dilation, groups, out_hw):
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.groups, self.out_hw = groups, out_hw

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
        k = self.w_mat.shape[2]
        kept = workspace.keep(self._cols_shape(x), x.dtype, xp) if self.needs_input_grad[1] else None
        cols = self._cols(x, out=kept)
        self.kept_cols = None if kept is None else cols
        # One matrix multiply per (group, image), written straight into y's (N, G, F/G, Ho*Wo) layout:
        # a single (G, F/G, N*Ho*Wo) product would need a transposing copy of the whole output after it.
        y = xp.empty((n, f) + tuple(self.out_hw), x.dtype)
        y_gnfp = y.reshape(n, g, f // g, -1).transpose(1, 0, 2, 3)                 # (G, N, F/G, Ho*Wo), a view
        xp.matmul(self.w_mat[:, None], cols.reshape(g, k, n, -1).transpose(0, 2, 1, 3), out=y_gnfp)
        return _add_bias(y, b)

    def _weight_grad(self, gy_mat):
        """dW = dY @ cols^T, cols kept or rebuilt: gy_mat (G, F/G, N*Ho*Wo) -> (F, C/G, kh, kw)."""
        g, f, _ = self.w_mat.shape
        cols = self._cols(self.x) if self.kept_cols is None else self.kept_cols
        return (gy_mat @ cols.transpose(0, 2, 1)).reshape(g * f, -1, *self.kernel)

    def backward(self, gy):
        xp, (g, f, k) = get_array_module(gy), self.w_mat.shape
        gy_mat = gy.transpose(1, 0, 2, 3).reshape(g, f, -1)                       # (G, F/G, N*Ho*Wo)
        gx = gw = None
        if self.needs_input_grad[1]:
            gw = self._weight_grad(gy_mat)
            self.kept_cols = None                                                 # free it before col2im
        if self.needs_input_grad[0]:   # dcols = W^T @ dY, then col2im adds each column back onto its window
            gcols = workspace.borrow("im2col", (g, k, gy_mat.shape[2]), gy.dtype, xp)
            xp.matmul(self.w_mat.transpose(0, 2, 1), gy_mat, out=gcols)
            gx = kernels(gy).col2im(gcols.reshape(g * k, -1), self.x.shape, self.kernel, self.stride,
                                    self.padding, self.dilation, self.out_hw)
        return with_bias_grad(self, (gx, gw), gy, bias_axis=1)


class WinogradConv2d(Function):
    """x: (N, C, H, W), w: (F, C, 3, 3), b: (F,) -> (N, F, Ho, Wo): 3x3, stride 1, dilation 1, groups 1.

    Winograd F(2x2, 3x3) (the math is in kernels/reference.py): y = A^T [U * V] A per 2x2 output
    tile, with U = G w G^T and V = B^T d B, summed over input channels as 16 matrix multiplies.
    dx is itself such a convolution: of gy, padded by 2 - p, with every filter flipped and the
    input and output channels swapped. dW is im2col's matrix multiply, a few images at a time.
    """
    def __init__(self, padding, out_hw):
        self.padding, self.out_hw = padding, out_hw

    def forward(self, x, w, b=None):
        k = kernels(x)
        self.x, self.w = x, w
        return k.winograd_conv(x, k.winograd_weights(w), self.padding, self.out_hw, b)

    def backward(self, gy):
        k, (ph, pw) = kernels(gy), self.padding
        gx = gw = None
        if self.needs_input_grad[1]:
            gw = k.winograd_weight_grad(self.x, gy, self.padding)
        if self.needs_input_grad[0]:
            flipped = self.w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)               # (C, F, 3, 3)
            gx = k.winograd_conv(gy, k.winograd_weights(flipped), (2 - ph, 2 - pw), self.x.shape[2:])
        return with_bias_grad(self, (gx, gw), gy, bias_axis=1)


class PointwiseConv2d(Function):
    """x: (N, C, H, W), w: (F, C, 1, 1), b: (F,) -> (N, F, H, W): a 1x1 convolution, stride 1, no padding.

    A 1x1 window is a single pixel, so im2col would only copy x: each image is
    already the matrix cols = x[n] of shape (C, H*W), and y[n] = W @ x[n] runs
    straight on it. dx[n] = W^T @ gy[n]; dW = sum over images of gy[n] @ x[n]^T.
    """
    def forward(self, x, w, b=None):
        n, c, h, wd = x.shape
        self.x3, self.w2 = x.reshape(n, c, h * wd), w.reshape(w.shape[0], c)
        y = get_array_module(x).matmul(self.w2, self.x3).reshape(n, -1, h, wd)   # (N, F, H*W) is NCHW already
        return _add_bias(y, b)

    def backward(self, gy):
        xp = get_array_module(gy)
        gy3 = gy.reshape(gy.shape[0], gy.shape[1], -1)
        gx = xp.matmul(self.w2.T, gy3).reshape(gy.shape[0], -1, *gy.shape[2:]) if self.needs_input_grad[0] else None
        gw = None
        if self.needs_input_grad[1]:   # contract over images and pixels together: one matrix multiply
            # (F, N*H*W) @ (C, N*H*W)^T: both made by moving whole channel planes (contiguous copies);
            # tensordot would transpose x to (N*H*W, C), a copy with a one-plane stride (4 KB at 32x32)
            # that measured 2x slower than this whole product at 192->64, 32x32, batch 64.
            gy_mat = gy3.transpose(1, 0, 2).reshape(gy3.shape[1], -1)
            x_mat = self.x3.transpose(1, 0, 2).reshape(self.x3.shape[1], -1)
            gw = (gy_mat @ x_mat.T).reshape(*self.w2.shape, 1, 1)
        return with_bias_grad(self, (gx, gw), gy, bias_axis=1)


class DepthwiseConv2d(Function):
    """x: (N, C, H, W), w: (C*m, 1, kh, kw), b: (C*m,) -> (N, C*m, Ho, Wo), groups == C.

    Each input channel c has its own m filters: y[n, c*m + j] = sum_{i,k} w[c*m + j, 0, i, k] * x_window.
    There is no sum over channels, so im2col's matrix multiply would be mostly
    zeros; a dedicated kernel slides each filter over its own channel instead.
    Backward: dx gathers w * gy back onto the windows; dw sums gy * x_window over the batch.
    """
    def __init__(self, stride, padding, dilation, out_hw):
        self.stride, self.padding, self.dilation, self.out_hw = stride, padding, dilation, out_hw

    def forward(self, x, w, b=None):
        self.x, self.w = x, w
        y = kernels(x).depthwise_forward(x, w, self.stride, self.padding, self.dilation, self.out_hw)
        return _add_bias(y, b)

    def backward(self, gy):
        gx, gw = kernels(gy).depthwise_backward(gy, self.x, self.w, self.stride, self.padding, self.dilation,
                                                need_dx=self.needs_input_grad[0])
        return with_bias_grad(self, (gx, gw), gy, bias_axis=1)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Like ``torch.nn.functional.conv2d``: x (N, C, H, W), weight (F, C/groups, kh, kw) -> (N, F, Ho, Wo)."""
    x, weight = as_tensor(x), as_tensor(weight)
    layer = "conv2d"
    stride, padding = pair(stride, layer, "stride"), pair(padding, layer, "padding")
    dilation = pair(dilation, layer, "dilation")
    check_positive(layer, stride=stride, dilation=dilation)
    if min(padding) < 0:
        raise ValueError(f"{layer}: padding must be >= 0, got {padding}")
    check_ndim(x, 4, layer)
    check_ndim(weight, 4, layer + " weight", "(F, C/groups, kh, kw)")
    f, cg, kh, kw = weight.shape
    if groups < 1 or x.shape[1] % groups or f % groups:
        raise ValueError(f"{layer}: groups={groups} must divide both the input channels {x.shape[1]} "
                         f"and the output channels {f}")
    if x.shape[1] != cg * groups:
        raise ValueError(f"{layer}: weight {tuple(weight.shape)} with groups={groups} expects input "
                         f"(N, {cg * groups}, H, W), got {tuple(x.shape)}")
    if bias is not None:
        bias = as_tensor(bias)
        if tuple(bias.shape) != (f,):
            raise ValueError(f"{layer}: bias must have shape ({f},), got {tuple(bias.shape)}")
    out_hw = tuple(output_size(x.shape[2 + a], (kh, kw)[a], stride[a], padding[a], dilation[a], layer, x.shape)
                   for a in range(2))
    inputs = (x, weight) if bias is None else (x, weight, bias)
    path = conv_path(x.shape[1], weight.shape, stride, padding, groups, dilation, like=x.data)
    if path == "winograd":
        return WinogradConv2d(padding, out_hw)(*inputs)
    if path == "depthwise":
        return DepthwiseConv2d(stride, padding, dilation, out_hw)(*inputs)
    if path == "pointwise":
        return PointwiseConv2d()(*inputs)
    return Conv2d(stride, padding, dilation, groups, out_hw)(*inputs)


WINOGRAD_MIN_CHANNELS = 16   # below this the 16 matrix multiplies are too thin (an RGB stem) to pay


def conv_path(in_channels, weight_shape, stride, padding, groups, dilation=(1, 1), like=None):
    """Which algorithm runs a convolution: 'depthwise' (one filter set per channel), 'pointwise'
    (1x1, stride 1, no padding: a plain matrix multiply), 'winograd' (3x3, stride 1, dilation 1,
    groups 1, padding <= 2, on a device whose kernels offer it; ``like`` is an array on that device,
    the CPU when None) or 'im2col' (everything else)."""
    f, cg, kh, kw = weight_shape
    if groups > 1 and groups == in_channels and cg == 1:
        return "depthwise"
    if groups == 1 and (kh, kw) == (1, 1) and tuple(stride) == (1, 1) and tuple(padding) == (0, 0):
        return "pointwise"
    offered = getattr(kernels(*(() if like is None else (like,))), "conv_algorithms", ("im2col",))
    if ("winograd" in offered and groups == 1 and (kh, kw) == (3, 3) and tuple(stride) == (1, 1)
            and tuple(dilation) == (1, 1) and max(padding) <= 2 and in_channels >= WINOGRAD_MIN_CHANNELS):
        return "winograd"
    return "im2col"
