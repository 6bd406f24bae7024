""""Why did it predict that?": attribution maps on the framework's own autograd.

    from minitorch_cnn.lab import attribution as attr
    sal = attr.saliency(model, x)                          # (H, W): max over channels of |d score / d x|
    cam = attr.gradcam(model, x, "layer4.1.relu:2")        # (H, W): Grad-CAM at any step with (N, C, h, w) output
    gbp = attr.guided_backprop(model, x)                   # (C, H, W): gradients through "guided" ReLUs
    occ = attr.occlusion(model, x, patch=8, stride=4)      # (H', W'): score drop when a patch is greyed out
    attr.randomisation_check(model, x, attr.saliency)      # Adebayo et al. 2018: do maps depend on the weights?

``score`` is the logit of class ``label`` (the predicted class when None), for image 0 of x (1, C, H, W).
Saliency (Simonyan et al. 2014) is the input gradient. Grad-CAM (Selvaraju et al. 2017) weights each
channel k of a step's output A by the spatial mean of d score / d A_k and keeps the positive part of the sum.
Guided backprop (Springenberg et al. 2015) also zeroes negative gradients at every ReLU on the way back.
Occlusion (Zeiler & Fergus 2014) needs no gradient at all: it greys out one patch at a time and records
how far the score falls. tests/lab/test_attribution.py checks each against finite differences or a
direct computation.
"""
import copy

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..device import get_array_module, kernels, to_numpy
from ..functional.activation import ReLU
from ..tensor import Tensor


def _main_output(output):
    """GoogLeNet in training mode returns (logits, aux1, aux2): the logits are what it predicts."""
    return output[0] if isinstance(output, tuple) else output


def _as_array(x):
    return np.asarray(to_numpy(x.data) if isinstance(x, Tensor) else x)


def predicted_class(model, x):
    with no_grad():
        return int(np.argmax(to_numpy(_main_output(model(Tensor(_as_array(x)))).data)[0]))


def class_score(output, label):
    """The logit of class ``label`` for image 0, as a scalar Tensor (so that backward starts from it)."""
    out = _main_output(output)
    onehot = np.zeros(out.shape, dtype=out.data.dtype)
    onehot[0, label] = 1.0
    return (out * Tensor(onehot)).sum()


def input_gradient(model, x, label=None):
    """(C, H, W): d score / d x for image 0 of x, and the label used."""
    label = predicted_class(model, x) if label is None else label
    xt = Tensor(_as_array(x), requires_grad=True)
    class_score(model(xt), label).backward()
    return np.array(to_numpy(xt.grad))[0], label


def saliency(model, x, label=None):
    """(H, W): the largest |d score / d x| over the colour channels at each pixel."""
    g, _ = input_gradient(model, x, label)
    return np.abs(g).max(axis=0)


def _resize(m, hw):
    """(h, w) -> (H, W), bilinear (PIL's, on float32)."""
    from PIL import Image
    if m.shape == tuple(hw):
        return m.astype(np.float64)
    img = Image.fromarray(m.astype(np.float32), mode="F").resize((hw[1], hw[0]), Image.BILINEAR)
    return np.asarray(img, dtype=np.float64)


def gradcam_parts(model, x, step, label=None, stepper=None):
    """(A, dA, weights) at the step named ``step`` for image 0: A and dA = d score / d A are (C, h, w),
    weights (C,) the spatial means of dA. Any step with a 4-D output: a convolution, a depthwise
    convolution, GoogLeNet's concatenation ``inception4a.cat``, ResNet's ``layer4.1.add``.
    ``stepper``: a Stepper of this model and x to reuse (its steps' grad_output are left as they were)."""
    from .stepper import Stepper
    label = predicted_class(model, x) if label is None else label
    st = Stepper(model, _as_array(x)) if stepper is None else stepper
    s = st[step]
    if s.output.ndim != 4:
        raise ValueError(f"gradcam: step {step!r} ({s.kind}) has output shape {s.output.shape}; "
                         "Grad-CAM needs (N, C, h, w) feature maps: pick a convolution or pooling step")
    kept = [t.grad_output for t in st]
    st.backward(label, loss_fn=lambda out, _target: class_score(out, label))
    a, da = s.output[0].astype(np.float64), s.grad_output[0].astype(np.float64)
    for t, g in zip(st, kept):
        t.grad_output = g
    return a, da, da.mean(axis=(1, 2))


def last_map_step(stepper):
    """The name of the last step whose output is (N, C, h, w) with h, w > 1: Grad-CAM's usual choice."""
    maps = [s.name for s in stepper if s.output.ndim == 4 and min(s.output.shape[2:]) > 1]
    if not maps:
        raise ValueError("no step of this model has (N, C, h, w) feature maps larger than 1x1")
    return maps[-1]


def gradcam(model, x, step, label=None, stepper=None):
    """(H, W): ReLU(sum_k weights_k A_k) at ``step``, resized to the input (bilinear)."""
    a, _, w = gradcam_parts(model, x, step, label, stepper)
    cam = np.maximum(np.tensordot(w, a, axes=1), 0.0)
    return _resize(cam, _as_array(x).shape[2:])


class GuidedReLU(ReLU):
    """ReLU (or ReLU6 with ``high=6``) whose backward also drops negative gradients: the gradient passes
    where the input was positive (the ReLU's own rule) AND the gradient arriving is positive."""

    def __init__(self, high=None):
        self.high = high

    def backward(self, gy):
        return kernels(gy).clamp_backward(gy * (gy > 0), self.y, self.high)


def _guide(module, inputs, output):
    """A forward hook: the ReLU's output recomputed by GuidedReLU, so that backward takes the guided rule."""
    return GuidedReLU(6.0 if isinstance(module, nn.ReLU6) else None)(inputs[0])


def guided_backprop(model, x, label=None):
    """(C, H, W): the input gradient with every ReLU / ReLU6 module guided (functional relu calls in a
    forward are left as they are: the zoo's models use modules)."""
    handles = [m.register_forward_hook(_guide) for m in model.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))]
    try:
        g, _ = input_gradient(model, x, label)
    finally:
        for h in handles:
            h.remove()
    return g


def occlusion(model, x, label=None, patch=8, stride=4, baseline=0.0):
    """(H', W'): score(x) - score(x with a ``patch`` x ``patch`` square set to ``baseline``), the square
    moved ``stride`` pixels at a time; H' = (H - patch) // stride + 1. Big = that region mattered."""
    x = _as_array(x)[:1]
    label = predicted_class(model, x) if label is None else label
    h, w = x.shape[2:]
    rows, cols = (h - patch) // stride + 1, (w - patch) // stride + 1
    batch = np.repeat(x, rows * cols + 1, axis=0)     # the last image stays whole
    for i in range(rows):
        for j in range(cols):
            batch[i * cols + j, :, i * stride:i * stride + patch, j * stride:j * stride + patch] = baseline
    with no_grad():
        scores = np.array(to_numpy(_main_output(model(Tensor(batch))).data))[:, label].astype(np.float64)
    return (scores[-1] - scores[:-1]).reshape(rows, cols)


def spearman(a, b):
    """Spearman rank correlation of two maps (Adebayo et al. compare |maps| this way)."""
    ra = np.argsort(np.argsort(np.ravel(a))).astype(np.float64)
    rb = np.argsort(np.argsort(np.ravel(b))).astype(np.float64)
    return float(np.corrcoef(ra, rb)[0, 1])


def parametrised_layers(model):
    """Names of the leaf modules with parameters, output side first (the order the check randomises)."""
    names = [n for n, m in model.named_modules()
             if n and not list(m.children()) and list(m.parameters())]
    return names[::-1]


def randomisation_check(model, x, method, label=None, seed=0, steps=None):
    """Cascading model-parameter randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps").

    Re-initialises the parametrised layers top-down (output side first), cumulatively, on a copy of the
    model, and after each one compares ``|method(copy, x, label)|`` with the map of the trained model:
    [(layer randomised last, Spearman rank correlation)]. A map that explains the model should fall
    apart as its weights go; one that stays put explains the image, not the model."""
    label = predicted_class(model, x) if label is None else label
    reference = np.abs(method(model, x, label))
    rng = np.random.default_rng(seed)
    rand = copy.deepcopy(model)
    modules = dict(rand.named_modules())
    out = []
    for name in parametrised_layers(rand)[:steps]:
        for p in modules[name].parameters():
            std = float(np.std(to_numpy(p.data))) or 0.1
            p.data[...] = rand_like(p.data, rng, std)
        out.append((name, spearman(reference, np.abs(method(rand, x, label)))))
    return out


def rand_like(data, rng, std):
    """Gaussian noise of ``std`` with the shape, dtype and device (array module) of ``data``."""
    return get_array_module(data).asarray(rng.standard_normal(data.shape).astype(data.dtype) * std)
