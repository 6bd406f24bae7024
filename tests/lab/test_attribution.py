"""Attribution maps (minitorch_cnn.lab.attribution), each against finite differences or a direct
computation, and the model-randomisation sanity check of Adebayo et al. 2018 on a trained LeNet-5."""
import numpy as np
import pytest

import minitorch_cnn.functional as F
import zoo
from minitorch_cnn import nn
from minitorch_cnn.autograd import no_grad
from minitorch_cnn.lab import attribution as A
from minitorch_cnn.optim import Adam
from minitorch_cnn.random import manual_seed
from minitorch_cnn.tensor import Tensor
from zoo.models.blocks import conv_bn
from zoo.models.googlenet import Inception, conv_bn_relu
from zoo.models.mobilenet_v1 import DepthwiseSeparable


def score(model, x, label):
    with no_grad():
        return float(A._main_output(model(Tensor(x))).numpy()[0, label])


def float64(model):
    return model.to(np.float64).eval()


def as_if_trained(model, seed=0):
    """Batch norms with the running mean and shift a trained model has. Fresh ones (mean 0, shift 0) map
    a window of zeros (ReLU zeros beside the padding) to exactly 0, a ReLU's kink, where no finite
    difference agrees with a gradient."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean[...] = 0.1 * rng.standard_normal(m.running_mean.shape)
            m.bias.data[...] = 0.1 * rng.standard_normal(m.bias.shape)
    return model


def test_saliency_is_the_input_gradient_by_finite_differences():
    manual_seed(0)
    model = float64(zoo.get_model("lenet5", in_channels=1, num_classes=10))
    x = np.random.default_rng(0).standard_normal((1, 1, 32, 32))
    g, label = A.input_gradient(model, x)
    assert label == int(np.argmax(model(Tensor(x)).numpy()[0]))
    rng, eps = np.random.default_rng(1), 1e-6
    for _ in range(8):
        i, j = rng.integers(0, 32, 2)
        up, down = x.copy(), x.copy()
        up[0, 0, i, j] += eps
        down[0, 0, i, j] -= eps
        fd = (score(model, up, label) - score(model, down, label)) / (2 * eps)
        assert abs(fd - g[0, i, j]) <= 1e-6 * max(1.0, abs(fd)), (i, j, fd, g[0, i, j])
    np.testing.assert_array_equal(A.saliency(model, x, label), np.abs(g).max(axis=0))


def directional_check(model, x, step, label, module, seeds=(0, 1)):
    """d score / d A from gradcam_parts against (score(A + eps D) - score(A - eps D)) / 2 eps, A moved by
    a forward hook on ``module`` (whose output is the step's output)."""
    a, da, w = A.gradcam_parts(model, x, step, label)
    np.testing.assert_allclose(w, da.mean(axis=(1, 2)))
    eps = 1e-6
    for seed in seeds:
        d = np.random.default_rng(seed).standard_normal((1, *a.shape))
        scores = []
        for sign in (1, -1):
            h = module.register_forward_hook(lambda m, i, out, s=sign, d=d: out + Tensor(s * eps * d))
            try:
                scores.append(score(model, x, label))
            finally:
                h.remove()
        fd = (scores[0] - scores[1]) / (2 * eps)
        analytic = float((da * d[0]).sum())
        assert abs(fd - analytic) <= 1e-5 * max(1.0, abs(fd)), (step, fd, analytic)


def test_gradcam_gradient_at_a_googlenet_concatenation():
    manual_seed(0)
    model = as_if_trained(float64(nn.Sequential(conv_bn_relu(3, 8, 3), Inception(8, 4, 4, 6, 2, 4, 4),
                                                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(18, 5))))
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8))
    a, _, _ = A.gradcam_parts(model, x, "1.cat", 2)
    assert a.shape == (18, 8, 8)                        # 4 + 6 + 4 + 4 channels side by side
    directional_check(model, x, "1.cat", 2, model[1])   # the Inception block's output is its cat


def test_gradcam_gradient_at_a_mobilenet_depthwise_convolution():
    manual_seed(0)
    model = as_if_trained(float64(nn.Sequential(conv_bn(3, 8, 3), DepthwiseSeparable(8, 16, 2),
                                                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5))))
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8))
    depthwise = model[1].depthwise.conv
    assert depthwise.groups == 8
    directional_check(model, x, "1.depthwise.conv", 1, depthwise)
    cam = A.gradcam(model, x, "1.depthwise.conv", 1)
    assert cam.shape == (8, 8) and cam.min() >= 0


def test_gradcam_before_global_pooling_is_cam():
    """Where only global average pooling and a Linear follow (ResNet-18's last block), Grad-CAM's weights
    are the Linear's row of the class over h*w (CAM, Zhou et al. 2016): a direct computation."""
    manual_seed(0)
    model = zoo.get_model("resnet18", in_channels=3, num_classes=10).eval()
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    a, _, w = A.gradcam_parts(model, x, "layer4.1.relu:2", 7)
    h, wd = a.shape[1:]
    np.testing.assert_allclose(w, model.fc.weight.numpy()[7] / (h * wd), rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="Grad-CAM needs"):
        A.gradcam(model, x, "fc", 7)


def test_guided_backprop_by_hand():
    """x -> W1 -> ReLU -> W2 -> score: guided backprop is W1^T [(h > 0) & (g > 0)] g with g = W2[c]."""
    manual_seed(0)
    model = float64(nn.Sequential(nn.Flatten(), nn.Linear(12, 20), nn.ReLU(), nn.Linear(20, 3)))
    x = np.random.default_rng(0).standard_normal((1, 3, 2, 2))
    w1, b1, w2 = model[1].weight.numpy(), model[1].bias.numpy(), model[3].weight.numpy()
    h = w1 @ x.reshape(-1) + b1
    g = w2[1]
    expected = (w1.T @ (g * (h > 0) * (g > 0))).reshape(3, 2, 2)
    np.testing.assert_allclose(A.guided_backprop(model, x, 1), expected, rtol=1e-12, atol=1e-12)
    plain, _ = A.input_gradient(model, x, 1)           # the hooks are gone afterwards: plain gradient again
    np.testing.assert_allclose(plain, (w1.T @ (g * (h > 0))).reshape(3, 2, 2), rtol=1e-12, atol=1e-12)
    assert not np.allclose(plain, expected)


def test_occlusion_of_a_linear_model_and_of_lenet():
    manual_seed(0)
    model = float64(nn.Sequential(nn.Flatten(), nn.Linear(2 * 8 * 8, 4)))
    x = np.random.default_rng(0).standard_normal((1, 2, 8, 8))
    occ = A.occlusion(model, x, label=3, patch=4, stride=2, baseline=0.5)
    w = model[1].weight.numpy()[3].reshape(2, 8, 8)
    assert occ.shape == (3, 3)
    for i in range(3):
        for j in range(3):
            sl = (slice(None), slice(2 * i, 2 * i + 4), slice(2 * j, 2 * j + 4))
            assert occ[i, j] == pytest.approx(float((w[sl] * (x[0][sl] - 0.5)).sum()), rel=1e-10, abs=1e-12)
    lenet = zoo.get_model("lenet5", in_channels=1, num_classes=10).eval()
    x = np.random.default_rng(1).standard_normal((1, 1, 32, 32)).astype(np.float32)
    occ = A.occlusion(lenet, x, label=4, patch=8, stride=8)
    hidden = x.copy()
    hidden[0, 0, 8:16, 16:24] = 0.0
    assert occ.shape == (4, 4)
    assert occ[1, 2] == pytest.approx(score(lenet, x, 4) - score(lenet, hidden, 4), rel=1e-4, abs=1e-5)


def blobs(n, rng):
    """Class = the quadrant that holds a bright 6x6 square, on a noisy background."""
    x = rng.standard_normal((n, 1, 32, 32)).astype(np.float32) * 0.5
    y = rng.integers(0, 4, n)
    for i, c in enumerate(y):
        r0, c0 = (c // 2) * 16 + rng.integers(2, 8), (c % 2) * 16 + rng.integers(2, 8)
        x[i, 0, r0:r0 + 6, c0:c0 + 6] += 2.5
    return x, y


@pytest.fixture(scope="module")
def trained_lenet():
    """LeNet-5 trained for 150 Adam steps (about 2 s) until it finds the square's quadrant every time."""
    manual_seed(0)
    rng = np.random.default_rng(0)
    model = zoo.get_model("lenet5", in_channels=1, num_classes=4)
    opt = Adam(model.parameters(), lr=2e-3)
    for _ in range(150):
        x, y = blobs(32, rng)
        loss = F.cross_entropy(model(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    x, y = blobs(200, rng)
    with no_grad():
        accuracy = (np.argmax(model(Tensor(x)).numpy(), axis=1) == y).mean()
    assert accuracy > 0.95, f"the sanity check needs a trained model; accuracy {accuracy}"
    return model, x[:1], int(y[0])


def test_model_randomisation_sanity_check(trained_lenet):
    """Adebayo et al. 2018: randomise the layers top-down. Saliency follows the weights (its maps
    decorrelate); guided backprop keeps its picture while the whole classifier is random (it fails)."""
    model, x, label = trained_lenet
    sal = A.randomisation_check(model, x, A.saliency, label)
    gbp = A.randomisation_check(model, x, lambda m, xx, c: A.guided_backprop(m, xx, c).max(axis=0), label)
    assert [n for n, _ in sal] == A.parametrised_layers(model)[:len(sal)]
    assert sal[0][0] == "classifier.fc3" and len(sal) == 5
    assert all(c < 0.85 for _, c in sal) and sal[-1][1] < 0.6, sal
    classifier = [c for n, c in gbp if n.startswith("classifier")]
    assert len(classifier) == 3 and min(classifier) > 0.9, gbp
    assert all(g > s for (_, g), (_, s) in zip(gbp, sal))
    # and the check can tell: a map that is the same model twice correlates perfectly
    assert A.spearman(A.saliency(model, x, label), A.saliency(model, x, label)) == pytest.approx(1.0)
