"""Pooling: max, average and adaptive average over 2-D windows.

Max pooling remembers which tap won in each window; its backward sends the
gradient only there. Average pooling spreads the gradient evenly over the
window. Adaptive average pooling is a fixed linear map per axis, so it is two
small matrix multiplies: y = P_h @ x @ P_w^T.
"""
from ..autograd import Function
from ..device import get_array_module, kernels
from ..tensor import as_tensor
from .checks import check_ndim, check_padding, check_positive, output_size, pair


def _pool_args(layer, x, kernel_size, stride, padding):
    x = as_tensor(x)
    check_ndim(x, 4, layer)
    kernel = pair(kernel_size, layer, "kernel_size")
    stride = kernel if stride is None else pair(stride, layer, "stride")
    padding = pair(padding, layer, "padding")
    check_positive(layer, kernel_size=kernel, stride=stride)
    check_padding(layer, padding, kernel)
    out_hw = tuple(output_size(x.shape[2 + a], kernel[a], stride[a], padding[a], 1, layer, x.shape)
                   for a in range(2))
    return x, kernel, stride, padding, out_hw


class MaxPool2d(Function):
    """x: (N, C, H, W) -> (N, C, Ho, Wo), the largest value in each window (first one on ties, like PyTorch).

    The forward remembers which tap won each window; the backward sends each
    window's gradient to that tap alone (summing where windows overlap).
    """
    def __init__(self, kernel, stride, padding, out_hw):
        self.kernel, self.stride, self.padding, self.out_hw = kernel, stride, padding, out_hw

    def forward(self, x):
        self.x_shape = x.shape
        y, self.argmax = kernels(x).max_pool_forward(x, self.kernel, self.stride, self.padding, self.out_hw)
        return y

    def backward(self, gy):
        return kernels(gy).max_pool_backward(gy, self.argmax, self.x_shape, self.kernel, self.stride, self.padding)


class AvgPool2d(Function):
    """x: (N, C, H, W) -> (N, C, Ho, Wo), each window's sum divided by ``divisor`` (Ho, Wo).

    The backward shares each window's gradient evenly: gy / divisor to every tap.
    """
    def __init__(self, kernel, stride, padding, out_hw, divisor):
        self.kernel, self.stride, self.padding, self.out_hw = kernel, stride, padding, out_hw
        self.divisor = divisor

    def forward(self, x):
        self.x_shape = x.shape
        return kernels(x).avg_pool_forward(x, self.kernel, self.stride, self.padding, self.out_hw, self.divisor)

    def backward(self, gy):
        return kernels(gy).avg_pool_backward(gy, self.x_shape, self.kernel, self.stride, self.padding, self.divisor)


def _window_counts(xp, size, kernel, stride, padding, out):
    """How many real (non-padding) pixels each output position's window covers along one axis."""
    start = xp.arange(out) * stride - padding
    return xp.minimum(start + kernel, size) - xp.maximum(start, 0)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Like ``torch.nn.functional.max_pool2d`` (floor mode): (N, C, H, W) -> (N, C, Ho, Wo)."""
    x, kernel, stride, padding, out_hw = _pool_args("max_pool2d", x, kernel_size, stride, padding)
    return MaxPool2d(kernel, stride, padding, out_hw)(x)


def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True, divisor_override=None):
    """Like ``torch.nn.functional.avg_pool2d`` (floor mode): (N, C, H, W) -> (N, C, Ho, Wo).

    ``count_include_pad=True`` (PyTorch's default) divides by kh*kw everywhere;
    False divides by the number of real pixels under each window.
    """
    x, kernel, stride, padding, out_hw = _pool_args("avg_pool2d", x, kernel_size, stride, padding)
    xp = get_array_module(x.data)
    if divisor_override is not None or count_include_pad or padding == (0, 0):
        divisor = xp.full(out_hw, divisor_override or kernel[0] * kernel[1], dtype=x.dtype)
    else:
        rows = _window_counts(xp, x.shape[2], kernel[0], stride[0], padding[0], out_hw[0])
        cols = _window_counts(xp, x.shape[3], kernel[1], stride[1], padding[1], out_hw[1])
        divisor = (rows[:, None] * cols[None, :]).astype(x.dtype)
    return AvgPool2d(kernel, stride, padding, out_hw, divisor)(x)


class AdaptiveAvgPool2d(Function):
    """x: (N, C, H, W) -> (N, C, Ho, Wo) = P_h @ x @ P_w^T; backward: P_h^T @ gy @ P_w."""
    def __init__(self, p_h, p_w):
        self.p_h, self.p_w = p_h, p_w

    def forward(self, x):
        return self.p_h @ x @ self.p_w.T

    def backward(self, gy):
        return self.p_h.T @ gy @ self.p_w


class BlockMeanPool2d(Function):
    """Adaptive average pooling where the output divides the input (global average pooling to 1x1 above all):
    x (N, C, oh*kh, ow*kw) -> (N, C, oh, ow), the mean of each kh x kw block: one reduction, where the
    matrix form above is many tiny GEMMs on a GPU. Backward: each gy spread evenly over its block."""
    def __init__(self, block):
        self.block = block

    def forward(self, x):
        n, c, h, w = x.shape
        self.shape, self.out = x.shape, (h // self.block[0], w // self.block[1])
        return x.reshape(n, c, self.out[0], self.block[0], self.out[1], self.block[1]).mean(axis=(3, 5))

    def backward(self, gy):
        xp = get_array_module(gy)
        (n, c, h, w), (kh, kw) = self.shape, self.block
        spread = xp.broadcast_to(gy[:, :, :, None, :, None], (n, c, self.out[0], kh, self.out[1], kw))
        return (spread / (kh * kw)).reshape(n, c, h, w)   # one division: a new contiguous array


def _adaptive_matrix(xp, size, out, dtype):
    """(out, size) averaging matrix: row i averages x[floor(i*size/out) : ceil((i+1)*size/out)], as PyTorch."""
    i = xp.arange(out)[:, None]
    start, end = (i * size) // out, -((-(i + 1) * size) // out)   # floor and ceil in integers
    pixel = xp.arange(size)[None, :]
    inside = (pixel >= start) & (pixel < end)
    return (inside / (end - start)).astype(dtype)


def adaptive_avg_pool2d(x, output_size):
    """Like ``torch.nn.functional.adaptive_avg_pool2d``: (N, C, H, W) -> (N, C, *output_size)."""
    x = as_tensor(x)
    layer = "adaptive_avg_pool2d"
    check_ndim(x, 4, layer)
    if output_size is None or isinstance(output_size, int):
        output_size = (output_size, output_size)
    out = tuple(x.shape[2 + a] if output_size[a] is None else output_size[a] for a in range(2))
    if len(out) != 2 or min(out) < 1:
        raise ValueError(f"{layer}: output_size must be positive, got {output_size}")
    if x.shape[2] % out[0] == 0 and x.shape[3] % out[1] == 0:   # equal blocks, PyTorch's windows exactly
        return BlockMeanPool2d((x.shape[2] // out[0], x.shape[3] // out[1]))(x)
    xp = get_array_module(x.data)
    p_h = _adaptive_matrix(xp, x.shape[2], out[0], x.dtype)
    p_w = _adaptive_matrix(xp, x.shape[3], out[1], x.dtype)
    return AdaptiveAvgPool2d(p_h, p_w)(x)
