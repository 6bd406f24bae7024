"""im2col's weight gradient in both operand orders (functional/conv.Conv2d._weight_grad): dY @ cols^T, and
(cols @ dY^T)^T where kernels/cpu's ``weight_grad_cols_first`` says (few filters, many columns)."""
import numpy as np
import pytest
from support.numerics import rel_err

import minitorch_cnn as mt
from minitorch_cnn import functional as F
from minitorch_cnn.kernels import cpu


def _grads(x, w, b, groups, padding):
    tensors = [mt.Tensor(a, requires_grad=True) for a in (x, w, b)]
    y = F.conv2d(*tensors, padding=padding, groups=groups)
    assert type(y.creator).algorithm == "im2col"
    y.backward(np.random.default_rng(4).standard_normal(y.shape).astype(x.dtype))
    return [t.grad for t in tensors]


# x shape, w shape, groups, padding: LeNet-5's second layer (smaller batch), two groups, F not a multiple of 8
@pytest.mark.parametrize("case", [((4, 6, 14, 14), (16, 6, 5, 5), 1, 0), ((3, 4, 9, 7), (6, 2, 3, 3), 2, 1),
                                  ((1, 3, 8, 8), (5, 3, 2, 2), 1, 0)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_both_operand_orders_give_the_same_gradients(case, dtype, monkeypatch):
    x_shape, w_shape, groups, padding = case
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (x_shape, w_shape, w_shape[:1]))
    monkeypatch.setattr(cpu, "weight_grad_cols_first", (0, 0))           # never: dY @ cols^T
    want = _grads(x, w, b, groups, padding)
    monkeypatch.setattr(cpu, "weight_grad_cols_first", (10 ** 6, 0))     # always: (cols @ dY^T)^T
    got = _grads(x, w, b, groups, padding)
    for g, r in zip(got, want):
        assert g.dtype == dtype and g.shape == r.shape and g.flags.c_contiguous
        assert rel_err(g, r) < (1e-12 if dtype == np.float64 else 1e-5)


def test_the_rule_picks_lenets_second_layer_not_a_wide_deep_layer():
    most_filters, least_columns = cpu.weight_grad_cols_first
    assert 16 <= most_filters and 64 * 10 * 10 >= least_columns     # LeNet-5's conv2: 16 filters, 6400 columns
    assert 256 > most_filters                                       # 256 filters measured slower that way
