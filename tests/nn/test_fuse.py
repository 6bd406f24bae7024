"""nn.fuse_batch_norm_activation: batch norm and the ReLU / ReLU6 after it as one Function in training (nn/fuse.py).

The pairs found in the zoo's models, a fused training step against an unfused one (loss, gradients, updated
weights, running statistics), the cases that must stay unfused (hooks, eval mode, a second reader), ``remove``,
and that folding (eval) and fusing (training) are active together without meeting.
"""
import numpy as np
import pytest

import minitorch_cnn as mt
import zoo
from minitorch_cnn import autograd, nn
from minitorch_cnn.nn.layers import _BatchNorm
from minitorch_cnn.nn.trace import find_pairs


class Block(nn.Module):
    """ResNet's BasicBlock in small: one ReLU module called after bn1 and again after the residual sum (bn2
    feeds the sum, not the ReLU), and a ReLU6 pair whose batch norm output is also read by a second branch."""

    def __init__(self, c):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.bn3, self.relu6 = nn.BatchNorm2d(c), nn.ReLU6()
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        b = self.bn3(x)
        return self.relu(out + x) + self.relu6(b) * 0.5 + b   # b read twice: bn3 stays unfused


def _model(dtype=np.float32):
    mt.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU6(), Block(8),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 6), nn.BatchNorm1d(6), nn.ReLU(),
                          nn.Linear(6, 3))
    x = mt.Tensor(np.random.default_rng(1).standard_normal((5, 3, 6, 6)).astype(dtype))
    return (model.double() if dtype == np.float64 else model), x


def _step(model, x, steps=2):
    """Two SGD steps; (losses, gradients of the last, state_dict after)."""
    opt = mt.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    y = np.arange(x.shape[0]) % 3
    losses = []
    for _ in range(steps):
        model.train()
        opt.zero_grad()
        loss = mt.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    grads = {n: p.grad.copy() for n, p in model.named_parameters()}
    return losses, grads, {k: np.array(v.data if hasattr(v, "data") else v) for k, v in model.state_dict().items()}


def _functions(model, x):
    names = []
    autograd.call_hooks.append(hook := lambda fn, tensors, results: names.append(type(fn).__name__))
    try:
        model(x)
    finally:
        autograd.call_hooks.remove(hook)
    return names


def test_the_pairs_are_the_batch_norms_only_an_activation_reads():
    model, x = _model()
    with nn.fuse_batch_norm_activation(model, x) as fusion:
        assert fusion.pairs == [("1", "2"), ("3.bn1", "3.relu"), ("7", "8")]


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_a_fused_training_step_is_the_unfused_one(dtype, tol):
    model, x = _model(dtype)
    want = _step(model, x)
    model, x = _model(dtype)
    with nn.fuse_batch_norm_activation(model, x):
        got = _step(model, x)
    np.testing.assert_allclose(got[0], want[0], rtol=tol)
    for name in want[1]:
        np.testing.assert_allclose(got[1][name], want[1][name], rtol=tol, atol=tol, err_msg=name)
    assert got[2].keys() == want[2].keys()
    for name in want[2]:   # weights, running statistics, num_batches_tracked (2: the trace counted none)
        np.testing.assert_allclose(got[2][name], want[2][name], rtol=tol, atol=tol, err_msg=name)
    assert got[2]["1.num_batches_tracked"] == 2


def test_fused_pairs_run_one_function_and_remove_restores():
    model, x = _model()
    with mt.no_grad():
        evaluated = _functions(model.eval(), x)
    plain = _functions(model.train(), x)
    fusion = nn.fuse_batch_norm_activation(model, x)
    fused = _functions(model, x)
    # three activations fewer (ReLU6 of the stem, ReLU after bn1, ReLU after BatchNorm1d), as many batch norms
    assert plain.count("BatchNormTrain") == fused.count("BatchNormTrain") == 5
    assert plain.count("ReLU") + plain.count("ReLU6") - 3 == fused.count("ReLU") + fused.count("ReLU6")
    with mt.no_grad():
        assert _functions(model.eval(), x) == evaluated   # eval: nothing fused
    fusion.remove()
    assert _functions(model.train(), x) == plain


def test_hooks_unfuse_their_pair():
    model, x = _model()
    model.train()
    seen = []
    with nn.fuse_batch_norm_activation(model, x):
        handle = model[2].register_forward_hook(lambda m, args, out: seen.append((args[0], out)))
        names = _functions(model, x)
        handle.remove()
    (given, out), = seen
    assert given.creator is not out.creator and type(out.creator).__name__ == "ReLU6"   # it saw y, then z
    assert names.count("ReLU6") == 2


def test_folding_and_fusing_together_change_no_output():
    model, x = _model()
    model.train()
    _step(model, x, steps=1)   # running statistics away from (0, 1)
    model.eval()
    with mt.no_grad():
        want = model(x).data.copy()
    with nn.fuse_batch_norm_activation(model, x), nn.fold_batch_norm(model, x):
        with mt.no_grad():
            np.testing.assert_allclose(model(x).data, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, fused, left", [
    # MobileNetV2: every expand and depthwise conv_bn and the stem and last 1x1 (ReLU6); its 17 projections
    # (no activation: the linear bottleneck) stay unfused
    ("mobilenet_v2", 35, lambda n: n.endswith("project.bn")),
    # ResNet-18: the stem and each block's bn1; bn2 and the shortcuts' batch norms feed the residual sum
    ("resnet18", 9, lambda n: n.endswith("bn2") or "shortcut" in n),
    ("vgg16", 13, lambda n: False),
])
def test_the_pairs_in_the_zoo(name, fused, left):
    model = zoo.get_model(name)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    fusion = nn.fuse_batch_norm_activation(model, x)
    bns = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    fused_bns = [b for b, _ in fusion.pairs]
    assert len(fusion.pairs) == fused
    assert sorted(set(bns) - set(fused_bns)) == sorted(n for n in bns if left(n))
    acts = dict(model.named_modules())
    assert all(type(acts[a]) in (nn.ReLU, nn.ReLU6) for _, a in fusion.pairs)
    fusion.remove()
    assert all(not m._replacements for m in model.modules())


class Returns(nn.Module):
    """Returns its batch norm's output beside the ReLU's: the caller reads it, so the pair stays unfused."""

    def __init__(self):
        super().__init__()
        self.bn, self.relu = nn.BatchNorm2d(3), nn.ReLU()

    def forward(self, x):
        y = self.bn(x)
        return self.relu(y), y


def test_a_batch_norm_output_the_model_returns_stays_unfused():
    model = Returns()
    x = mt.Tensor(np.random.default_rng(0).standard_normal((4, 3, 2, 2)).astype(np.float32))
    with nn.fuse_batch_norm_activation(model, x) as fusion:
        assert fusion.pairs == []
        z, y = model(x)
        assert float(y.data.min()) < 0


def test_a_model_without_a_batch_norm_and_activation_pair_is_not_traced():
    """No forward runs to look for pairs that cannot exist (the training loop fuses at every epoch's start)."""
    calls = []
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    model.register_forward_pre_hook(lambda m, inputs: calls.append(1))
    with nn.fuse_batch_norm_activation(model, mt.Tensor(np.ones((1, 1, 5, 5), np.float32))) as fusion:
        assert fusion.pairs == [] and calls == []


def test_the_pairs_are_found_on_one_image_of_the_batch():
    """The traced forward runs the batch's first image only (which module reads which does not depend on the
    batch size), and finds the same pairs as the whole batch would."""
    model, x = _model()
    seen = []
    handle = model.register_forward_pre_hook(lambda m, inputs: seen.append(inputs[0].shape[0]))
    with nn.fuse_batch_norm_activation(model, x) as fusion:
        pairs = fusion.pairs
    handle.remove()
    assert seen == [1] and x.shape[0] == 5
    names = {id(m): name for name, m in model.named_modules()}
    whole, _, _ = find_pairs(model, x, _BatchNorm, (nn.ReLU, nn.ReLU6))     # traced on the whole batch
    assert len(pairs) >= 2 and pairs == [(names[id(b)], names[id(a)]) for b, a in whole]
