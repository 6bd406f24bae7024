"""GPU wrappers for pool.cu: max pooling (with argmax) and average pooling, forward and backward.

Same names and signatures as ``kernels/cpu`` and ``kernels/reference``.
"""
from ...device import get_array_module
from .launch import elementwise, i32, load_kernel


def _divisor_map(xp, divisor, out_hw, dtype):
    """The (Ho, Wo) divisor as a contiguous array of the data's dtype (it may come as a scalar)."""
    return xp.ascontiguousarray(xp.broadcast_to(xp.asarray(divisor, dtype=dtype), tuple(out_hw)))


def max_pool_forward(x, kernel, stride, padding, out_hw):
    """x (N, C, H, W) -> (y (N, C, Ho, Wo), argmax (N, C, Ho, Wo) int32: the winning tap i*kw + j)."""
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    shape = x.shape[:2] + tuple(out_hw)
    y, argmax = xp.empty(shape, x.dtype), xp.empty(shape, xp.int32)
    elementwise(load_kernel("pool", "max_pool_forward", x.dtype, x), y.size,
                (x, y, argmax, *i32(*x.shape, *kernel, *stride, *padding, *out_hw)))
    return y, argmax


def max_pool_backward(gy, argmax, x_shape, kernel, stride, padding):
    """gy (N, C, Ho, Wo) -> dx (N, C, H, W): each pixel gathers the gradients of the windows it won."""
    xp = get_array_module(gy)
    gy, argmax = xp.ascontiguousarray(gy), xp.ascontiguousarray(argmax, dtype=xp.int32)
    dx = xp.empty(tuple(x_shape), gy.dtype)
    elementwise(load_kernel("pool", "max_pool_backward", gy.dtype, gy), dx.size,
                (gy, argmax, dx, *i32(*x_shape, *kernel, *stride, *padding, *gy.shape[2:])))
    return dx


def avg_pool_forward(x, kernel, stride, padding, out_hw, divisor):
    """x (N, C, H, W) -> (N, C, Ho, Wo): each window's sum over ``divisor`` (an (Ho, Wo) array)."""
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    y = xp.empty(x.shape[:2] + tuple(out_hw), x.dtype)
    elementwise(load_kernel("pool", "avg_pool_forward", x.dtype, x), y.size,
                (x, _divisor_map(xp, divisor, out_hw, x.dtype), y,
                 *i32(*x.shape, *kernel, *stride, *padding, *out_hw)))
    return y


def avg_pool_backward(gy, x_shape, kernel, stride, padding, divisor):
    """gy (N, C, Ho, Wo) -> dx (N, C, H, W): each pixel gathers gy / divisor of every window holding it."""
    xp = get_array_module(gy)
    gy = xp.ascontiguousarray(gy)
    dx = xp.empty(tuple(x_shape), gy.dtype)
    elementwise(load_kernel("pool", "avg_pool_backward", gy.dtype, gy), dx.size,
                (gy, _divisor_map(xp, divisor, gy.shape[2:], gy.dtype), dx,
                 *i32(*x_shape, *kernel, *stride, *padding, *gy.shape[2:])))
    return dx
