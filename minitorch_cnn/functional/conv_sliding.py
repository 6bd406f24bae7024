"""The convolutions that build no matrix: each filter slides over the input planes themselves.

``DepthwiseConv2d``: one filter set per channel (MobileNet), where im2col's product would be mostly zeros.
``DirectConv2d``: few filters (LeNet-5's two layers: 6 and 16), where a column matrix of C*kh*kw rows is written
and read again for a product too thin to pay for it. The kernels are ``depthwise_*`` and ``direct_conv*``
(``kernels/reference.py`` in array slicing, ``kernels/cpu`` in Numba).
"""
from ..autograd import Function
from ..device import kernels
from .checks import with_bias_grad


def _add_bias(y, b):
    """y (N, F, Ho, Wo) + b (F,) per output channel, in place; b may be None (no bias)."""
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


class DepthwiseConv2d(Function):
    """x: (N, C, H, W), w: (C*m, 1, kh, kw), b: (C*m,) -> (N, C*m, Ho, Wo), groups == C.

    Each input channel c has its own m filters: y[n, c*m + j] = sum_{i,k} w[c*m + j, 0, i, k] * x_window.
    There is no sum over channels, so im2col's matrix multiply would be mostly
    zeros; a dedicated kernel slides each filter over its own channel instead.
    Backward: dx gathers w * gy back onto the windows; dw sums gy * x_window over the batch.
    """
    algorithm = "depthwise"   # the ConvPlan algorithm this Function runs
    def __init__(self, stride, padding, dilation, out_hw):
        self.stride, self.padding, self.dilation, self.out_hw = stride, padding, dilation, out_hw

    def forward(self, x, w, b=None):
        self.x, self.w = x, w
        return kernels(x).depthwise_forward(x, w, self.stride, self.padding, self.dilation, self.out_hw, b)

    def backward(self, gy):
        gx, gw = kernels(gy).depthwise_backward(gy, self.x, self.w, self.stride, self.padding, self.dilation,
                                                need_dx=self.needs_input_grad[0])
        return with_bias_grad(self, (gx, gw), gy, bias_axis=1)



class DirectConv2d(Function):
    """x: (N, C, H, W), w: (F, C, kh, kw), b: (F,) -> (N, F, Ho, Wo): stride 1, groups 1, few filters F.

    y[n, f] = b[f] + sum over c, i, j of w[f, c, i, j] * x[n, c] shifted by the tap (i, j), accumulated
    plane by plane with no column matrix. Backward: dW[f, c, i, j] = sum of dY[n, f] * x[n, c] shifted the
    same way; dx[n, c] gathers w[f, c, i, j] * dY[n, f] back onto the shifted positions.
    """
    algorithm = "direct"   # the ConvPlan algorithm this Function runs
    def __init__(self, padding, dilation, out_hw):
        self.padding, self.dilation, self.out_hw = padding, dilation, out_hw

    def forward(self, x, w, b=None):
        self.x, self.w = x, w
        return kernels(x).direct_conv(x, w, b, self.padding, self.dilation, self.out_hw)

    def backward(self, gy):
        gx, gw = kernels(gy).direct_conv_backward(gy, self.x, self.w, self.padding, self.dilation,
                                                  need_dx=self.needs_input_grad[0])
        return with_bias_grad(self, (gx, gw), gy, bias_axis=1)
