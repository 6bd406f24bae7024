# %% [markdown]
# # Lab 9 — Why did it predict that? Attribution maps, their sanity check, and a backward you can bisect
#
# Train a LeNet-5, then ask it which pixels its prediction rests on, four ways: saliency (the input
# gradient), Grad-CAM (feature maps weighted by their gradients), guided backprop (gradients through ReLUs
# that also drop negative gradients) and occlusion (grey out a patch, see the score fall). Then test the
# maps: re-initialise the network top-down (Adebayo et al. 2018, "Sanity checks for saliency maps") and
# see which map follows the weights and which one keeps drawing the image. Last, a backward with a
# planted bug: the model-level gradient check fails, and `st.bisect()` names the step and where its
# wrong gradients sit. Framework code: `minitorch_cnn/lab/attribution.py`, `lab/backward_steps.py`.
# Data: `LABS_QUICK=1` (and any machine without CIFAR-10) trains on shapes the lab draws itself (square,
# disc, cross, ring; random places and colours; 2,400 images, 5 epochs, seconds). The full run trains on
# CIFAR-10 when it is found (`$MINITORCH_DATA`, or the cache that `python -m minitorch_cnn.data.fetch
# cifar10` fills: about 163 MB), else on 12,000 shapes; `LABS_DATA=generated` forces the shapes.
#
# Time: about 2.5 hours. You will be able to: compute Grad-CAM from a step's output and gradient; derive
# it for a global-average-pooling head; write occlusion; run the randomisation sanity check and read it;
# find a wrong backward with a bisector instead of by staring at code.

# %%
import copy
import time
from collections import OrderedDict

import numpy as np
from labcheck import LABS_DATA, QUICK, attempt, check_close, report, save_figure, summary

import minitorch_cnn as mt
import zoo
from minitorch_cnn import functional as F
from minitorch_cnn import nn
from minitorch_cnn.data import DataLoader, Dataset, DatasetNotFoundError, load_dataset
from minitorch_cnn.functional.pool import MaxPool2d as MaxPoolFunction
from minitorch_cnn.lab import Stepper
from minitorch_cnn.lab import attribution as A

mt.manual_seed(0)

# %% [markdown]
# ## The data and the model

# %%
SHAPES = ("square", "disc", "cross", "ring")


def drawn_shapes(n, seed=0):
    """n 32x32 RGB uint8 images: one bright shape of a random colour, size and place on a dim, slightly
    noisy background; the label says which shape (so the colour and the place tell the model nothing)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    labels = rng.integers(0, len(SHAPES), n)
    images = np.empty((n, 3, 32, 32), np.uint8)
    for i, label in enumerate(labels):
        background = rng.uniform(30, 110, (3, 1, 1)) + rng.normal(0, 10, (3, 32, 32))
        r = rng.uniform(5, 7)
        dy, dx = yy - rng.uniform(r + 1, 31 - r), xx - rng.uniform(r + 1, 31 - r)
        d2 = dy ** 2 + dx ** 2
        mask = [(abs(dy) <= r) & (abs(dx) <= r), d2 <= r ** 2,
                ((abs(dy) <= 1.5) & (abs(dx) <= r)) | ((abs(dx) <= 1.5) & (abs(dy) <= r)),
                (d2 <= r ** 2) & (d2 >= (r - 2.5) ** 2)][label]
        images[i] = np.clip(np.where(mask, rng.uniform(150, 255, (3, 1, 1)), background), 0, 255)
    return Dataset(images, labels, SHAPES, (0.3, 0.3, 0.3), (0.25, 0.25, 0.25), "drawn shapes")


def get_data():
    """(train, test): CIFAR-10 in a full run when its files are found, else the drawn shapes."""
    if not QUICK and LABS_DATA != "generated":
        try:
            return load_dataset("cifar10", "train", download=False), load_dataset("cifar10", "test", download=False)
        except DatasetNotFoundError:
            print("cifar10: files not found. To use it: `python -m minitorch_cnn.data.fetch cifar10` (about "
                  "163 MB into ~/.cache/minitorch_cnn), or set MINITORCH_DATA to a folder holding cifar10/")
    n = 2400 if QUICK else 12000
    print(f"training on {n} drawn shapes (generated, learnable, no download)")
    return drawn_shapes(n), drawn_shapes(400, seed=1)


train, test = get_data()
epochs, lr = (8, 1e-3) if train.name == "cifar10" else (5, 2e-3)
model = zoo.get_model("lenet5", in_channels=3, num_classes=len(train.classes))
opt = mt.optim.Adam(model.parameters(), lr=lr)
schedule = mt.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)   # small steps at the end: a steady model
start = time.perf_counter()
for epoch in range(epochs):
    for x, y in DataLoader(train, 32, shuffle=True, seed=epoch):
        loss = F.cross_entropy(model(mt.Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    schedule.step()
model.eval()
batches = list(DataLoader(test, 500))                # normalised, as the model saw them
x_test, y_test = np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])
with mt.no_grad():
    predicted = np.concatenate([model(mt.Tensor(x)).data.argmax(axis=1) for x, _ in batches])
acc = float((predicted == y_test).mean())
print(f"LeNet-5 on {train.name}: {epochs} epochs in {time.perf_counter() - start:.0f} s, test accuracy {acc:.3f}")
want = 0.5 if train.name == "cifar10" else 0.85    # CIFAR-10: a LeNet-5 gets about 0.6; the shapes: 0.9-1.0
report("test accuracy", f"{acc:.3f}", f"> {want}", acc > want)

# one correctly classified test image of each of the first four classes: the images we explain
shown = [int(np.flatnonzero((y_test == c) & (predicted == c))[0]) for c in range(len(train.classes))
         if ((y_test == c) & (predicted == c)).any()][:4]
x0, label0 = x_test[shown[0]:shown[0] + 1], int(y_test[shown[0]])

# %% [markdown]
# ## Exercise 1: Grad-CAM from a step's output and its gradient
# Grad-CAM (Selvaraju et al. 2017) looks at one step with feature maps A (C channels of h x w). With y the
# class score (the logit), each channel gets a weight, the average over the map of how much the score
# moves with that channel: alpha_k = (1 / hw) sum_ij dy / dA_kij. The map is ReLU(sum_k alpha_k A_k):
# where the weighted channels are on, and only the part that speaks *for* the class.
# `A.gradcam_parts` runs the stepper's backward from the class score and hands you A and dA.

# %%
def gradcam_from_parts(a, da):
    """a, da: (C, h, w) the step's output and d score / d output -> (weights (C,), cam (h, w))."""
    # BEGIN SOLUTION
    weights = da.mean(axis=(1, 2))
    return weights, np.maximum(np.tensordot(weights, a, axes=1), 0.0)
    # END SOLUTION


CAM_STEP = "features.relu2"        # 16 maps of 10x10: the last before the pooling blurs them to 5x5
a, da, library_weights = A.gradcam_parts(model, x0, CAM_STEP, label0)
mine = attempt(lambda: gradcam_from_parts(a, da))
if mine is not None:
    check_close("Grad-CAM weights", mine[0], library_weights, 1e-6)
    check_close("Grad-CAM map (resized to 32x32)", A._resize(mine[1], (32, 32)),
                A.gradcam(model, x0, CAM_STEP, label0), 1e-6)

# %% [markdown]
# ## Exercise 2: derive Grad-CAM for a global-average-pooling head
# Many networks end in global average pooling then one Linear layer: y_c = sum_k W_ck mean_ij(A_kij) + b_c
# (CAM, Zhou et al. 2016, was defined for exactly these). Differentiate y_c by A_kij on paper, put it into
# alpha_k, and write the weights as a formula of the Linear layer's weight: no backward pass. The check
# compares them with the autograd's on a small network of this shape.

# %%
def gap_head_weights(fc_weight, label, h, w):
    """fc_weight (classes, C), the class, the feature map's h and w -> Grad-CAM's weights (C,)."""
    # BEGIN SOLUTION
    return fc_weight[label] / (h * w)      # dy/dA_kij = W_ck / hw everywhere, and so is its mean
    # END SOLUTION


mt.manual_seed(1)
gap_net = nn.Sequential(OrderedDict([("conv", nn.Conv2d(3, 8, 3, padding=1)), ("relu", nn.ReLU()),
                                     ("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
                                     ("fc", nn.Linear(8, 4))])).double().eval()
x_gap = np.random.default_rng(2).standard_normal((1, 3, 6, 5))
check_close("GAP head weights (label 2)", lambda: gap_head_weights(gap_net.fc.weight.numpy(), 2, 6, 5),
            A.gradcam_parts(gap_net, x_gap, "relu", 2)[2])

# %% [markdown]
# ## Exercise 3: occlusion
# No gradient at all (Zeiler & Fergus 2014): set a `patch` x `patch` square of every channel to `baseline`,
# at rows and columns 0, stride, 2*stride, ... (as long as the square fits), and record how far the class
# score falls: out[i, j] = score(x) - score(x with the square at (i*stride, j*stride) covered). One forward
# of a batch of all the covered copies is much faster than one forward each.

# %%
def occlusion(model, x, label, patch, stride, baseline=0.0):
    """x (1, C, H, W) -> (H', W'), H' = (H - patch) // stride + 1: the score's drop per covered square."""
    # BEGIN SOLUTION
    h, w = x.shape[2:]
    rows, cols = (h - patch) // stride + 1, (w - patch) // stride + 1
    batch = np.repeat(x, rows * cols, axis=0)
    for i in range(rows):
        for j in range(cols):
            batch[i * cols + j, :, i * stride:i * stride + patch, j * stride:j * stride + patch] = baseline
    with mt.no_grad():
        scores = model(mt.Tensor(np.concatenate([x, batch]))).data[:, label].astype(np.float64)
    return (scores[0] - scores[1:]).reshape(rows, cols)
    # END SOLUTION


def check_occlusion(patch, stride, baseline):
    check_close(f"occlusion patch={patch} stride={stride} baseline={baseline}",
                lambda: occlusion(model, x0, label0, patch, stride, baseline),
                A.occlusion(model, x0, label0, patch, stride, baseline), 1e-5)


check_occlusion(8, 4, 0.0)
check_occlusion(5, 3, -1.0)       # a stride that does not divide 32 - 5, and a baseline that is not 0

# %% [markdown]
# ## Four maps of four images
# Saliency: max over colours of |dy/dx|. Guided backprop: shown as the colour image of its gradient
# (the positive part, scaled). Grad-CAM: over the image. Occlusion: red = covering it lowers the score.

# %%
from matplotlib.figure import Figure  # noqa: E402


def picture(i):
    return test.images[i].transpose(1, 2, 0)


def as_rgb(g):
    return np.maximum(g, 0).transpose(1, 2, 0) / (g.max() + 1e-12)


fig = Figure(figsize=(12, 12))
grid = fig.add_gridspec(6, 6)
columns = ("image", "saliency", "Grad-CAM", "guided backprop", "occlusion 8/4")
for row, i in enumerate(shown):
    xi, yi = x_test[i:i + 1], int(y_test[i])
    maps = [picture(i), A.saliency(model, xi, yi), A.gradcam(model, xi, CAM_STEP, yi),
            as_rgb(A.guided_backprop(model, xi, yi)), A.occlusion(model, xi, yi, 8, 4)]
    for col, (title, m) in enumerate(zip(columns, maps)):
        ax = fig.add_subplot(grid[row, col])
        if title == "Grad-CAM":
            ax.imshow(picture(i))
            ax.imshow(m, cmap="jet", alpha=0.45)
        else:
            ax.imshow(m, cmap={"saliency": "gray", "occlusion 8/4": "RdBu_r"}.get(title))
        ax.set_title(f"{title}" + (f": {train.classes[yi]}" if col == 0 else ""), fontsize=8)
        ax.axis("off")

# %% [markdown]
# ## Exercise 4: the sanity check, written by you
# If a map explains the *model*, it must change when the model's weights do. Re-initialise the layers
# with parameters one at a time from the output side (fc3, then fc2 too, then fc1, conv2, conv1: a
# cascade), and after each compare the map of the randomised copy with the trained model's by Spearman's
# rank correlation (`A.spearman`). On `copy.deepcopy(model)`, layers in the order of
# `A.parametrised_layers(model)`, each parameter `p` of a layer in order: `p.data[...] = A.rand_like(p.data,
# rng, std)`, std its standard deviation (0.1 if 0), one `rng = np.random.default_rng(seed)` for all. Compare
# the maps as `method` returns them (signed); the check runs yours on saliency (>= 0) against
# `A.randomisation_check`, which compares |maps|.

# %%
def cascade(model, x, label, method, seed=0):
    """[(layer, Spearman rho of method(copy randomised down to that layer, x, label) with method(model, x,
    label))], layers re-initialised output side first, cumulatively."""
    # BEGIN SOLUTION
    reference = method(model, x, label)
    rng = np.random.default_rng(seed)
    randomised = copy.deepcopy(model)
    modules = dict(randomised.named_modules())
    out = []
    for name in A.parametrised_layers(randomised):
        for p in modules[name].parameters():
            p.data[...] = A.rand_like(p.data, rng, float(np.std(p.data)) or 0.1)
        out.append((name, A.spearman(reference, method(randomised, x, label))))
    return out
    # END SOLUTION


check_close("cascade on saliency vs A.randomisation_check",
            lambda: [rho for _, rho in cascade(model, x0, label0, A.saliency)],
            [rho for _, rho in A.randomisation_check(model, x0, A.saliency, label0)], 1e-9)

# %% [markdown]
# The table: the signed input gradient (saliency before its |.|) against guided backprop, the mean rho over
# eight correctly classified test images. The first image's maps are drawn at the bottom of the figure.

# %%
kept = {"saliency": [], "guided backprop": []}


def keeping(name, method):
    """method, also keeping |map| (max over colours) for the figure: the trained model's first."""
    def run(m, x, label):
        out = method(m, x, label)
        kept[name].append(np.abs(out).max(axis=0))
        return out
    return run


def cascades(name, method):
    """cascade() of method on every explained image: (images, layers) rhos, and the layers' names."""
    runs = [cascade(model, x_test[i:i + 1], int(y_test[i]), keeping(name, method) if i == shown[0] else method)
            for i in explained]
    return np.array([[r for _, r in run] for run in runs]), [layer for layer, _ in runs[0]]


explained = shown + [int(i) for i in np.flatnonzero(predicted == y_test) if i not in shown][:4]
signed_gradient = ("saliency", lambda m, x, label: A.input_gradient(m, x, label)[0])
tables = attempt(lambda: {name: cascades(name, method) for name, method in (signed_gradient,
                                                                             ("guided backprop", A.guided_backprop))})
if tables is not None:
    layers = tables["saliency"][1]
    rho = {name: t[0].mean(axis=0) for name, t in tables.items()}
    print(f"{'randomised down to':<20} {'saliency rho':>13} {'(mean |rho|)':>13} {'guided backprop rho':>20}")
    for k, name in enumerate(layers):
        print(f"{name:<20} {rho['saliency'][k]:13.2f} {np.abs(tables['saliency'][0][:, k]).mean():13.2f} "
              f"{rho['guided backprop'][k]:20.2f}")
    top = layers.index("classifier.fc1")          # the whole classifier random, the convolutions trained
    report("guided backprop's rho while the classifier goes (lowest)", f"{rho['guided backprop'][:top + 1].min():.2f}",
           "> 0.6", rho["guided backprop"][:top + 1].min() > 0.6)
    sal_gone = np.abs(tables["saliency"][0][:, top]).mean()
    report("saliency's mean |rho| with the whole classifier random", f"{sal_gone:.2f}", "< 0.3", sal_gone < 0.3)
    for row, name in ((4, "saliency"), (5, "guided backprop")):
        for col, (title, m) in enumerate(zip(["trained"] + layers, kept[name][:6])):
            ax = fig.add_subplot(grid[row, col])
            ax.imshow(m, cmap="gray")
            ax.set_title(f"{name}: {title}" if col == 0 else f"random to {title.split('.')[-1]}", fontsize=8)
            ax.axis("off")
fig.suptitle(f"LeNet-5 on {train.name} (test accuracy {acc:.2f}); bottom: the cascade on the first image")
save_figure(fig, "09_attribution.png")

# %% [markdown]
# **Question 1.** Once fc3 alone is random, the saliency rho can be far from 1, even negative, while its
# mean |rho| stays high; once the whole classifier is random both are near 0, while guided backprop's rho
# stays high until the convolutions go. What does
# guided backprop's rule do to the class information coming down from the classifier, and what is its map
# then a picture of? Why did we compare signed maps rather than |maps| here? (Try `A.randomisation_check`,
# which takes |.|, and look at the border of the maps.)
#
# BEGIN SOLUTION
# *Answer.* Guided backprop zeroes every negative gradient at every ReLU on the way down, on top of the
# ReLU's own rule, so whatever signs the (trained or random) classifier sends, what survives is routed by
# the positive activations of the conv layers: the map is a reconstruction of the image's strong features
# by the lower layers (Nie et al. 2018), the same whatever the class or the top weights. It explains the
# image, not the decision, so it fails the check; saliency follows the weights and passes. Negative rho
# after fc3: the random logit may point against the trained one, and the gradient flips sign (|rho| high).
# With |maps| every map, trained or random, is dim at the border (the 5x5 convs read an edge pixel once,
# a central one 25 times), and that shared frame alone keeps Spearman at 0.6-0.7 for both methods.
# END SOLUTION

# %% [markdown]
# ## Exercise 5: a backward you can bisect
# Here is a hand-written max-pool backward, plugged into a copy of our LeNet-5 in place of its second
# pool, as an *overlapping* 3x3 stride-2 pool (AlexNet's). Its forward is the framework's. Do not read
# the backward for the bug yet: run the model-level gradcheck and the bisector first.

# %%
class HandWrittenMaxPoolFunction(MaxPoolFunction):
    """Max pooling; backward sends each window's gradient to the tap that won it (argmax: the forward's,
    the framework's, tap k*kw + l of each window)."""

    def backward(self, gy):
        gx = np.zeros(self.x_shape, gy.dtype)
        (_, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        for n, c, i, j in np.ndindex(*gy.shape):
            tap = int(self.argmax[n, c, i, j])
            gx[n, c, i * sh - ph + tap // kw, j * sw - pw + tap % kw] = gy[n, c, i, j]
        return gx


class HandWrittenMaxPool(nn.MaxPool2d):
    """nn.MaxPool2d that runs ``function`` (a MaxPool2d Function class) instead of F.max_pool2d."""

    def __init__(self, function, kernel_size=3, stride=2, padding=1):
        super().__init__(kernel_size, stride, padding)
        self.function = function

    def forward(self, x):
        out_hw = tuple((s + 2 * self.padding - self.kernel_size) // self.stride + 1 for s in x.shape[2:])
        return self.function((self.kernel_size,) * 2, (self.stride,) * 2, (self.padding,) * 2, out_hw)(x)


def with_pool(function):
    m = copy.deepcopy(model)
    m.features.pool2 = HandWrittenMaxPool(function)      # (16, 10, 10) -> (16, 5, 5), as the AvgPool2d it replaces
    return m.eval()


st = Stepper(with_pool(HandWrittenMaxPoolFunction), x0)
st.backward(label0, loss_fn=lambda out, _target: A.class_score(out, label0))   # from the class score, as above
for _ in range(4):                  # the backward, one recorded step at a time, from the output
    print(st.step_back())
found = st.bisect()
print("\n".join(line for line in str(found).splitlines() if "(expect" not in line))   # its check lines: below
if found.step_check is not None:
    print(f"  that step's own gradcheck: max relative error {found.step_check.max_error:.1e}")
report("bisect names the hand-written pool", found.step.name if found.step else None, "== features.pool2",
       found.step is not None and found.step.name == "features.pool2")

# %% [markdown]
# The bisector said where the wrong gradients sit. Now read `HandWrittenMaxPoolFunction.backward` and
# write the corrected one. The checks: the model-level gradcheck and the step's own, and the input gradient
# against the one through the framework's own max pool.

# %%
class FixedMaxPoolFunction(MaxPoolFunction):
    def backward(self, gy):
        """gy (N, C, Ho, Wo) -> gx (N, C, H, W)."""
        gx = np.zeros(self.x_shape, gy.dtype)
        (_, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        # BEGIN SOLUTION
        for n, c, i, j in np.ndindex(*gy.shape):
            tap = int(self.argmax[n, c, i, j])
            gx[n, c, i * sh - ph + tap // kw, j * sw - pw + tap % kw] += gy[n, c, i, j]
        # END SOLUTION
        return gx


fixed = attempt(lambda: Stepper(with_pool(FixedMaxPoolFunction), x0).bisect())
if fixed is not None:      # finite differences of a whole trained net: round-off alone reaches 1e-6 at times
    report("model-level gradcheck with your fix: max relative error", f"{fixed.model_check.max_error:.1e}",
           f"< 1e-04; planted: {found.model_check.max_error:.1e}", fixed.model_check.max_error < 1e-4)
    own = Stepper(with_pool(FixedMaxPoolFunction), x0)["features.pool2"].gradcheck()
    report("your pool step's own gradcheck", "passed" if own.passed else "FAILED", "passed", own.passed)
    reference = copy.deepcopy(model)
    reference.features.pool2 = nn.MaxPool2d(3, stride=2, padding=1)
    check_close("input gradient through your pool", A.input_gradient(with_pool(FixedMaxPoolFunction), x0, label0)[0],
                A.input_gradient(reference.eval(), x0, label0)[0], 1e-6)

# %% [markdown]
# **Question 2.** Before you read the code, what did "errors only where windows overlap" tell you about
# the bug, and why could a 2x2 stride-2 pool (LeNet-5's own, or the test in lab 3) never show it?
#
# BEGIN SOLUTION
# *Answer.* A pixel read by one window gets one gradient, so any rule that handles one contribution right
# is right there; the errors appear only where a pixel can win two windows, that is where contributions must
# be combined: the backward overwrites (`=`) where it must accumulate (`+=`), so the last window's gradient
# replaces the earlier ones. With 2x2 windows at stride 2 no pixel is in two windows, so `=` and `+=` give
# the same result and every check there passes: a check must include the case that exercises the sum.
# END SOLUTION

# %%
summary()   # "n of m checks passed"; as a script, exit status 1 when any failed
