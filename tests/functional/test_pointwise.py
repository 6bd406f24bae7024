"""The 1x1 convolution (functional/conv.py PointwiseConv2d) in both of its modes, image by image
(``per_image``: kernels batched_matmul) and over channel-first columns (kernels matmul_channels_first):
forward and every gradient against PyTorch, with and without a bias, on shapes whose images split
unevenly over the threads (tests/conftest.py lowers the threshold from which they do)."""
import numpy as np
import pytest
import torch
from support.numerics import rel_err

import minitorch_cnn as mt
import minitorch_cnn.functional as F
from minitorch_cnn.functional.conv import plan_conv
from minitorch_cnn.kernels import cpu

TOL = {np.float32: 2e-5, np.float64: 1e-12}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("per_image", [True, False])
@pytest.mark.parametrize("x_shape,filters", [((7, 33, 9, 11), 17), ((5, 64, 4, 4), 40), ((3, 8, 1, 2), 5),
                                             ((1, 3, 2, 2), 2)])
@pytest.mark.parametrize("bias", [True, False])
def test_pointwise_matches_torch_in_both_modes(dtype, per_image, x_shape, filters, bias, monkeypatch):
    monkeypatch.setitem(cpu.gemm_per_image_from, "pointwise", 0 if per_image else 1 << 30)
    rng = np.random.default_rng(3)
    shapes = [x_shape, (filters, x_shape[1], 1, 1)] + ([(filters,)] if bias else [])
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    assert plan_conv(x_shape, arrays[1].shape).per_image == per_image
    ours = [mt.Tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = F.conv2d(*ours), torch.nn.functional.conv2d(*theirs)
    assert type(y.creator).algorithm == "pointwise" and y.dtype == dtype
    g = rng.standard_normal(ty.shape).astype(dtype)
    y.backward(g)
    ty.backward(torch.tensor(g))
    assert rel_err(y.data, ty.detach().numpy()) <= TOL[dtype]
    for name, m, t in zip(("dx", "dw", "db"), ours, theirs):
        assert m.grad.dtype == dtype and rel_err(m.grad, t.grad.numpy()) <= TOL[dtype], name
