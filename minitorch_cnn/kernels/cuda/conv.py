"""GPU wrappers for conv.cu: im2col, col2im, depthwise forward and backward.

Same names and signatures as ``kernels/cpu`` and ``kernels/reference``. Each allocates its
outputs with the array module of its input and launches one kernel (two for the depthwise backward).
"""
from ...device import get_array_module
from .launch import elementwise, i32, load_kernel, per_block


def im2col(x, kernel, stride, padding, dilation, out_hw, out=None):
    """x: (N, C, H, W) -> cols (C*kh*kw, N*Ho*Wo) (into ``out`` when given, which must be C-contiguous)."""
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    n, c, h, w = x.shape
    shape = (c * kernel[0] * kernel[1], n * out_hw[0] * out_hw[1])
    cols = xp.empty(shape, x.dtype) if out is None else out
    if cols.shape != shape or cols.dtype != x.dtype or not cols.flags.c_contiguous:
        raise ValueError(f"im2col: out must be a C-contiguous {x.dtype} array of shape {shape}, "
                         f"got {cols.dtype} {cols.shape}")
    elementwise(load_kernel("conv", "im2col", x.dtype, x), shape[1],          # one thread per column
                (x, cols, *i32(n, c, h, w, *kernel, *stride, *padding, *dilation, *out_hw)))
    return cols


def col2im(cols, x_shape, kernel, stride, padding, dilation, out_hw):
    """cols (C*kh*kw, N*Ho*Wo) -> dx (N, C, H, W): each pixel gathers the columns of its windows."""
    xp = get_array_module(cols)
    cols = xp.ascontiguousarray(cols)
    dx = xp.empty(tuple(x_shape), cols.dtype)
    elementwise(load_kernel("conv", "col2im", cols.dtype, cols), dx.size,
                (cols, dx, *i32(*x_shape, *kernel, *stride, *padding, *dilation, *out_hw)))
    return dx


def _depthwise_sizes(x_shape, w_shape, stride, padding, dilation, out_hw):
    n, c, h, w = x_shape
    return i32(n, c, h, w, w_shape[0] // c, w_shape[2], w_shape[3], *stride, *padding, *dilation, *out_hw)


def depthwise_forward(x, w, stride, padding, dilation, out_hw, bias=None):
    """x (N, C, H, W), w (C*m, 1, kh, kw) -> (N, C*m, Ho, Wo), plus bias (C*m,) when given (zeros when not)."""
    xp = get_array_module(x)
    x, w = xp.ascontiguousarray(x), xp.ascontiguousarray(w, dtype=x.dtype)
    bias = xp.zeros(w.shape[0], x.dtype) if bias is None else xp.ascontiguousarray(bias, dtype=x.dtype)
    y = xp.empty((x.shape[0], w.shape[0]) + tuple(out_hw), x.dtype)
    elementwise(load_kernel("conv", "depthwise_forward", x.dtype, x), y.size,
                (x, w, bias, y, *_depthwise_sizes(x.shape, w.shape, stride, padding, dilation, out_hw)))
    return y


def depthwise_backward(gy, x, w, stride, padding, dilation, need_dx=True):
    """gy (N, C*m, Ho, Wo) -> (dx (N, C, H, W) or None, dw (C*m, 1, kh, kw))."""
    xp = get_array_module(gy)
    gy, x, w = xp.ascontiguousarray(gy), xp.ascontiguousarray(x), xp.ascontiguousarray(w, dtype=gy.dtype)
    sizes = _depthwise_sizes(x.shape, w.shape, stride, padding, dilation, gy.shape[2:])
    dw = xp.empty_like(w)
    per_block(load_kernel("conv", "depthwise_backward_weight", gy.dtype, gy), dw.size, (gy, x, dw, *sizes),
              gy.shape[0] * gy.shape[2] * gy.shape[3])
    dx = None
    if need_dx:
        dx = xp.empty_like(x)
        elementwise(load_kernel("conv", "depthwise_backward_input", gy.dtype, gy), dx.size, (gy, w, dx, *sizes))
    return dx, dw
