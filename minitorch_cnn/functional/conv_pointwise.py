"""The 1x1 convolution: a plain matrix multiply per image, or over the batch's columns on small maps."""
from .. import workspace
from ..autograd import Function
from ..device import get_array_module, kernels
from .checks import with_bias_grad


class PointwiseConv2d(Function):
    """x: (N, C, H, W), w: (F, C, 1, 1), b: (F,) -> (N, F, H, W): a 1x1 convolution, stride 1, no padding.

    A 1x1 window is a single pixel, so im2col would only copy x: each image is
    already the matrix cols = x[n] of shape (C, H*W), and y[n] = W @ x[n] runs
    straight on it. dx[n] = W^T @ gy[n]; dW = sum over images of gy[n] @ x[n]^T. With ``per_image``
    these run image by image (kernels' batched_matmul, summed_matmul_nt). Without it (few pixels per
    image: MobileNet's 4x4 to 1x1 maps, where a product per image is a thin matrix times a few columns)
    x, dY and dx move channel-first, (C, N*H*W), and each product runs once over the whole batch
    (matmul_channels_first: the copies and the product, the bias added on the way back).
    """
    algorithm = "pointwise"   # the ConvPlan algorithm this Function runs
    def __init__(self, per_image=True):
        self.per_image = per_image

    def forward(self, x, w, b=None):
        xp, (n, c, h, wd) = get_array_module(x), x.shape
        self.x3, self.w2 = x.reshape(n, c, h * wd), w.reshape(w.shape[0], c)
        y = xp.empty((n, self.w2.shape[0], h, wd), x.dtype)
        y3 = y.reshape(n, -1, h * wd)                             # (N, F, H*W) is NCHW already
        if self.per_image:
            kernels(x).batched_matmul(self.w2, self.x3, y3, bias=b)
            return y
        x_mat = workspace.borrow("pointwise input", (c, n * h * wd), x.dtype, xp)
        y_mat = workspace.borrow("conv output", (self.w2.shape[0], n * h * wd), x.dtype, xp)
        kernels(x).matmul_channels_first(self.w2, self.x3, y3, b, x_mat, y_mat)
        return y

    def backward(self, gy):
        xp, k, (n, f) = get_array_module(gy), kernels(gy), gy.shape[:2]
        gy3, c = gy.reshape(n, f, -1), self.x3.shape[1]
        x_shape, need_dx, need_dw = (n, c) + gy.shape[2:], self.needs_input_grad[0], self.needs_input_grad[1]
        gx = xp.empty(x_shape, gy.dtype) if need_dx else None
        gw = xp.empty((f, c), gy.dtype) if need_dw else None
        if self.per_image:   # image by image, dW summed over them: no copy of dY or x (kernels/cpu/threads.py)
            if need_dx:      # W^T made contiguous (weight-sized): a batched product copies a strided one
                k.batched_matmul(xp.ascontiguousarray(self.w2.T), gy3, gx.reshape(n, c, -1))
            if need_dw:
                k.summed_matmul_nt(gy3, self.x3, gw)
        else:                # over the batch's columns: dY channel-first (F, N*H*W), kept by dx's product for dW
            gy_mat = xp.empty((f, gy3.shape[0] * gy3.shape[2]), gy.dtype)
            if need_dx:
                k.matmul_channels_first(self.w2.T, gy3, gx.reshape(n, c, -1), None, gy_mat,
                                        xp.empty((c, gy_mat.shape[1]), gy.dtype))
            else:
                gy_mat.reshape(f, n, -1)[...] = gy3.transpose(1, 0, 2)
            if need_dw:      # (F, N*H*W) @ (C, N*H*W)^T, x moved channel-first a whole plane at a time
                xp.matmul(gy_mat, self.x3.transpose(1, 0, 2).reshape(c, -1).T, out=gw)
        return with_bias_grad(self, (gx, None if gw is None else gw.reshape(f, c, 1, 1)), gy, bias_axis=1)
