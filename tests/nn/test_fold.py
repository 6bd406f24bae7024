"""nn.fold_batch_norm: batch norm folded into the convolution before it, for inference (nn/fold.py).

Every folded forward is compared with the same model's unfolded forward; the pairs found, the cases
that must stay unfolded (a conv output read twice, hooks, training, gradients) and ``remove`` are checked.
"""
import numpy as np
import pytest

import minitorch_cnn as mt
from minitorch_cnn import nn


class Block(nn.Module):
    """A ResNet-style block (convs and batch norms called from forward, not a Sequential) whose first conv's
    output is also read by a second branch when ``shared``: that pair must stay unfolded."""

    def __init__(self, c, shared=False):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.dw, self.bn3 = nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), nn.BatchNorm2d(c)
        self.shared = shared

    def forward(self, x):
        a = self.conv1(x)
        out = nn.ReLU()(self.bn1(a))
        out = self.bn3(self.dw(self.bn2(self.conv2(out))))
        return out + a if self.shared else out + x


def _model(shared=False, dtype=np.float32):
    mt.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 5, padding=2), nn.BatchNorm2d(16), nn.ReLU(), Block(16, shared),
                          nn.Conv2d(16, 8, 1), nn.BatchNorm2d(8))
    rng = np.random.default_rng(1)
    for m in model.modules():    # running statistics and affine parameters far from the identity
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean[...] = rng.standard_normal(c)
            m.running_var[...] = rng.uniform(0.2, 3.0, c)
            m.weight.data[...] = rng.uniform(0.5, 2.0, c)
            m.bias.data[...] = rng.standard_normal(c)
    model = model.double() if dtype == np.float64 else model
    x = mt.Tensor(rng.standard_normal((4, 3, 12, 12)).astype(dtype))
    return model.eval(), x


def _forward(model, x):
    with mt.no_grad():
        return model(x).data.copy()


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_the_folded_forward_is_the_unfolded_one(dtype, tol):
    model, x = _model(dtype=dtype)
    want = _forward(model, x)
    with nn.fold_batch_norm(model, x) as folding:
        assert folding.pairs == [("0", "1"), ("3.conv1", "3.bn1"), ("3.conv2", "3.bn2"), ("3.dw", "3.bn3"),
                                 ("4", "5")]
        assert folding.activations == ["2", None, None, None, None]   # Block's ReLU is a new module per call
        got = _forward(model, x)
        assert model[1].training is False and got.dtype == dtype
        assert np.array_equal(folding.output.data, want)      # the tracing forward's own output, unfolded
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
    assert np.array_equal(_forward(model, x), want)        # removed: the modules run as before


def test_the_folded_pairs_skip_the_batch_norm_pass():
    model, x = _model()
    seen = []
    mt.autograd.call_hooks.append(lambda fn, *_: seen.append(type(fn).__name__))
    try:
        with nn.fold_batch_norm(model, x):
            seen.clear()
            _forward(model, x)
    finally:
        mt.autograd.call_hooks.pop()
    assert "BatchNormEval" not in seen and seen.count("Conv2d") + seen.count("WinogradConv2d") > 0


def test_a_conv_output_read_twice_stays_unfolded():
    model, x = _model(shared=True)
    want = _forward(model, x)
    with nn.fold_batch_norm(model, x) as folding:
        assert ("3.conv1", "3.bn1") not in folding.pairs and ("3.conv2", "3.bn2") in folding.pairs
        got = _forward(model, x)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * np.abs(want).max())


def test_training_gradients_and_hooks_see_the_batch_norm():
    model, x = _model()
    with nn.fold_batch_norm(model, x):
        y = model(x)                                       # eval but recording: unfolded, as before
        assert type(y.creator).__name__ == "BatchNormEval"
        seen = []
        handle = model[1].register_forward_hook(lambda m, inputs, out: seen.append(inputs[0].data.copy()))
        unfolded_conv = model[0](x).data
        np.testing.assert_allclose(_forward(model, x), _forward_plain(model, x), rtol=2e-5, atol=1e-4)
        handle.remove()
        np.testing.assert_array_equal(seen[0], unfolded_conv)   # the hooked batch norm read the raw conv output
        model.train()
        before = model[1].running_mean.copy()
        with mt.no_grad():
            model(x)
        assert not np.array_equal(model[1].running_mean, before), "training mode runs the batch norm itself"


def _forward_plain(model, x):
    """The unfolded forward of a model that may be folded: with a hook on every batch norm (none folds)."""
    handles = [m.register_forward_pre_hook(lambda *_: None) for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    try:
        return _forward(model, x)
    finally:
        for h in handles:
            h.remove()


def test_an_activation_that_alone_reads_the_batch_norm_clamps_the_folded_output_in_place():
    model, x = _model()
    want = _forward(model, x)
    seen, outputs = [], []
    mt.autograd.call_hooks.append(lambda fn, *_: seen.append(type(fn).__name__))
    try:
        with nn.fold_batch_norm(model, x):
            seen.clear()
            got = _forward(model, x)
            assert seen.count("ReLU") == 1          # only Block's: the Sequential's ReLU ran inside the conv
            handle = model[2].register_forward_pre_hook(lambda m, inputs: outputs.append(inputs[0].data.copy()))
            hooked = _forward(model, x)             # a hooked activation sees its input unclamped, and clamps it
            handle.remove()
    finally:
        mt.autograd.call_hooks.pop()
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * np.abs(want).max())
    np.testing.assert_allclose(hooked, want, rtol=2e-5, atol=2e-5 * np.abs(want).max())
    assert (outputs[0] < 0).any()


class TwoOutputs(nn.Module):
    """conv -> bn -> relu where the batch norm's output is also returned: it must not be clamped."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.relu = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()

    def forward(self, x):
        y = self.bn(self.conv(x))
        return self.relu(y), y


def test_an_activation_whose_input_is_also_the_models_output_does_not_clamp_it():
    mt.manual_seed(0)
    model = TwoOutputs().eval()
    model.bn.running_mean[...] = 0.5
    x = mt.Tensor(np.random.default_rng(2).standard_normal((2, 3, 6, 6)).astype(np.float32))
    with mt.no_grad():
        want = [t.data.copy() for t in model(x)]
    with nn.fold_batch_norm(model, x) as folding:
        assert folding.pairs == [("conv", "bn")] and folding.activations == [None]
        with mt.no_grad():
            got = [t.data for t in model(x)]
    assert (want[1] < 0).any()
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=1e-5)
