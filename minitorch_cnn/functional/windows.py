"""Sliding windows over an image: the one idea behind im2col, pooling and their backward passes.

``windows`` is a strided *view* (no copy) of every kh x kw window; ``add_windows``
is its adjoint: it adds a value per window tap back onto the (padded) image,
summing where windows overlap. Both loop only over the kh*kw kernel taps;
each step is one vectorised slice operation over batch, channels and pixels.
"""
from ..backend import get_array_module


def pad2d(x, ph, pw, value=0.0):
    """x: (N, C, H, W) -> (N, C, H + 2ph, W + 2pw), border filled with ``value``."""
    if ph == 0 and pw == 0:
        return x
    xp = get_array_module(x)
    n, c, h, w = x.shape
    out = xp.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def tap(kernel_index, dilation, stride, count):
    """The slice of a padded axis that kernel tap ``kernel_index`` sees at the ``count`` output positions."""
    start = kernel_index * dilation
    return slice(start, start + stride * (count - 1) + 1, stride)


def windows(xpad, kernel, stride, dilation, out_hw):
    """xpad: (N, C, Hp, Wp) -> strided view (N, C, kh, kw, Ho, Wo).

    view[n, c, i, j, y, x] = xpad[n, c, y*sh + i*dh, x*sw + j*dw]
    """
    xp = get_array_module(xpad)
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    s_n, s_c, s_h, s_w = xpad.strides
    return xp.lib.stride_tricks.as_strided(
        xpad, shape=xpad.shape[:2] + (kh, kw, ho, wo),
        strides=(s_n, s_c, s_h * dh, s_w * dw, s_h * sh, s_w * sw))


def add_windows(values, padded_hw, kernel, stride, dilation):
    """Adjoint of ``windows``: values (N, C, kh, kw, Ho, Wo) -> (N, C, Hp, Wp), overlaps summed."""
    xp = get_array_module(values)
    n, c, kh, kw, ho, wo = values.shape
    out = xp.zeros((n, c) + tuple(padded_hw), dtype=values.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, tap(i, dilation[0], stride[0], ho), tap(j, dilation[1], stride[1], wo)] += values[:, :, i, j]
    return out


def unpad2d(x, ph, pw):
    """Inverse of ``pad2d`` for gradients: drop the border."""
    h, w = x.shape[2] - 2 * ph, x.shape[3] - 2 * pw
    return x[:, :, ph:ph + h, pw:pw + w]
