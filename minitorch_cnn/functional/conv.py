"""2-D convolution: im2col + one matrix multiply, and a dedicated depthwise path.

A convolution is a matrix multiply in disguise. ``im2col`` lays every receptive
field out as one column, so that

    y[f, (n, y, x)] = sum_k  W[f, k] * cols[k, (n, y, x)],   k = (c, i, j)

is ``W @ cols`` over the whole batch at once. Its backward is two more matrix
multiplies (dW = dY @ cols^T, dcols = W^T @ dY) and ``col2im``, the adjoint of
``im2col``, which adds each column back onto the pixels it came from.
"""
from ..autograd import Function
from ..backend import get_array_module
from ..tensor import as_tensor
from .checks import check_ndim, check_positive, output_size, pair
from .windows import add_windows, pad2d, tap, unpad2d, windows


def im2col(x, kernel, stride, padding, dilation, out_hw):
    """x: (N, C, H, W) -> cols (C*kh*kw, N*Ho*Wo): a strided view of the windows plus one copy."""
    xp = get_array_module(x)
    win = windows(pad2d(x, *padding), kernel, stride, dilation, out_hw)  # (N, C, kh, kw, Ho, Wo)
    n, c, kh, kw, ho, wo = win.shape
    return xp.ascontiguousarray(win.transpose(1, 2, 3, 0, 4, 5)).reshape(c * kh * kw, n * ho * wo)


def col2im(cols, x_shape, kernel, stride, padding, dilation, out_hw):
    """cols (C*kh*kw, N*Ho*Wo) -> (N, C, H, W): each column added back onto its window (the adjoint of im2col)."""
    n, c, h, w = x_shape
    values = cols.reshape(c, kernel[0], kernel[1], n, *out_hw).transpose(3, 0, 1, 2, 4, 5)
    padded = add_windows(values, (h + 2 * padding[0], w + 2 * padding[1]), kernel, stride, dilation)
    return unpad2d(padded, *padding)


class Conv2d(Function):
    """x: (N, C, H, W), w: (F, C/groups, kh, kw), b: (F,) -> (N, F, Ho, Wo).

    With groups G the channels split into G independent convolutions; they run as
    one batched matrix multiply (G, F/G, K) @ (G, K, N*Ho*Wo), not a loop.
    """
    def __init__(self, stride, padding, dilation, groups, out_hw):
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.groups, self.out_hw = groups, out_hw

    def forward(self, x, w, b=None):
        xp = get_array_module(x)
        g, (f, cg, kh, kw) = self.groups, w.shape
        self.x_shape, self.kernel = x.shape, (kh, kw)
        self.cols = im2col(x, self.kernel, self.stride, self.padding, self.dilation, self.out_hw)
        self.w_mat = w.reshape(g, f // g, cg * kh * kw)
        y = xp.matmul(self.w_mat, self.cols.reshape(g, cg * kh * kw, -1))       # (G, F/G, N*Ho*Wo)
        y = y.reshape(f, x.shape[0], *self.out_hw).transpose(1, 0, 2, 3)          # (N, F, Ho, Wo)
        y = xp.ascontiguousarray(y)
        if b is not None:
            y += b.reshape(1, f, 1, 1)
        return y

    def backward(self, gy):
        (g, f, k) = self.w_mat.shape
        gy_mat = gy.transpose(1, 0, 2, 3).reshape(g, f, -1)                       # (G, F/G, N*Ho*Wo)
        gx = gw = None
        if self.needs_input_grad[0]:
            gcols = get_array_module(gy).matmul(self.w_mat.transpose(0, 2, 1), gy_mat)  # (G, K, N*Ho*Wo)
            gx = col2im(gcols.reshape(g * k, -1), self.x_shape, self.kernel, self.stride,
                        self.padding, self.dilation, self.out_hw)
        if self.needs_input_grad[1]:
            cols = self.cols.reshape(g, k, -1)
            gw = (gy_mat @ cols.transpose(0, 2, 1)).reshape(g * f, k // (self.kernel[0] * self.kernel[1]),
                                                            *self.kernel)
        gb = gy.sum(axis=(0, 2, 3)) if len(self.needs_input_grad) == 3 else None
        return (gx, gw, gb)[:len(self.needs_input_grad)]


class DepthwiseConv2d(Function):
    """x: (N, C, H, W), w: (C*m, 1, kh, kw), b: (C*m,) -> (N, C*m, Ho, Wo), groups == C.

    Each input channel c has its own m filters: y[n, c*m + j] = sum_{i,k} w[c*m + j, 0, i, k] * x_window.
    There is no sum over channels, so im2col's matrix multiply would be mostly
    zeros; instead we loop over the kh*kw taps and multiply whole shifted images.
    """
    def __init__(self, stride, padding, dilation, out_hw):
        self.stride, self.padding, self.dilation, self.out_hw = stride, padding, dilation, out_hw

    def forward(self, x, w, b=None):
        xp = get_array_module(x)
        (n, c, _, _), (cm, _, kh, kw) = x.shape, w.shape
        self.x_shape, self.w = x.shape, w.reshape(c, cm // c, kh, kw)
        self.xpad = pad2d(x, *self.padding)
        y = xp.zeros((n, c, cm // c) + tuple(self.out_hw), dtype=x.dtype)
        for i, j, sl in self._taps(kh, kw):
            y += self.xpad[:, :, None, sl[0], sl[1]] * self.w[None, :, :, i, j, None, None]
        y = y.reshape(n, cm, *self.out_hw)
        if b is not None:
            y += b.reshape(1, cm, 1, 1)
        return y

    def backward(self, gy):
        xp = get_array_module(gy)
        (n, c, _, _), (_, m, kh, kw) = self.x_shape, self.w.shape
        gy5 = gy.reshape(n, c, m, *self.out_hw)
        gxpad = xp.zeros_like(self.xpad) if self.needs_input_grad[0] else None
        gw = xp.zeros_like(self.w)
        for i, j, sl in self._taps(kh, kw):
            if gxpad is not None:
                gxpad[:, :, sl[0], sl[1]] += (gy5 * self.w[None, :, :, i, j, None, None]).sum(axis=2)
            gw[:, :, i, j] = xp.einsum("ncmyx,ncyx->cm", gy5, self.xpad[:, :, sl[0], sl[1]])
        gx = unpad2d(gxpad, *self.padding) if gxpad is not None else None
        gb = gy.sum(axis=(0, 2, 3)) if len(self.needs_input_grad) == 3 else None
        return (gx, gw.reshape(c * m, 1, kh, kw), gb)[:len(self.needs_input_grad)]

    def _taps(self, kh, kw):
        (sh, sw), (dh, dw), (ho, wo) = self.stride, self.dilation, self.out_hw
        for i in range(kh):
            for j in range(kw):
                yield i, j, (tap(i, dh, sh, ho), tap(j, dw, sw, wo))


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
    if groups > 1 and groups == x.shape[1] and cg == 1:
        return DepthwiseConv2d(stride, padding, dilation, out_hw)(*inputs)
    return Conv2d(stride, padding, dilation, groups, out_hw)(*inputs)
