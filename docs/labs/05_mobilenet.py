# %% [markdown]
# # Lab 5 — Depthwise separable convolutions and MobileNet
#
# A standard k x k conv from C to N channels mixes space and channels at once. MobileNet splits it: a
# *depthwise* k x k conv (groups = C, one filter per channel) then a *pointwise* 1x1 conv (C to N).
# How much cheaper is that? You count it in exercise 2.
# Then MobileNetV2's inverted residual, stepped: expand (1x1) -> depthwise (3x3) -> project (1x1).
#
# Time: about 1.5 hours. You will be able to: write a grouped convolution from plain ones; count a
# layer's multiply-adds and derive what the separable split saves; read an inverted residual's steps.

# %%
import numpy as np
from labcheck import check_grouped_conv, check_mac_ratio, report, save_figure, summary

import minitorch_cnn as mt
import zoo
from minitorch_cnn import functional as F
from minitorch_cnn.lab import Stepper, sample_image

# %% [markdown]
# ## Exercise 1: a grouped convolution is G convolutions side by side
# Split the input channels into G groups and the filters into G groups; group g's filters only see
# group g's channels. Write it with `F.conv2d` (groups=1) on slices, and concatenate.

# %%
def grouped_conv(x, w, groups, pad):
    """x (N, C, H, W), w (F, C/groups, kh, kw) -> (N, F, Ho, Wo)."""
    # BEGIN SOLUTION
    c, f = x.shape[1] // groups, w.shape[0] // groups
    parts = [F.conv2d(mt.Tensor(x[:, g * c:(g + 1) * c]), mt.Tensor(w[g * f:(g + 1) * f]), padding=pad).data
             for g in range(groups)]
    return np.concatenate(parts, axis=1)
    # END SOLUTION


check_grouped_conv(grouped_conv)

# %% [markdown]
# ## Exercise 2: the multiply-add ratio
# Count the multiply-adds per output pixel of each of the three convolutions (a standard k x k one from C
# to N channels, the depthwise k x k one, the pointwise 1x1 one), then write the ratio
# (depthwise + pointwise) / standard as a function of N and k. Note that C drops out.
# The check counts the MACs of real layers.
#
# **Question 1.** For 3x3 filters and N = 256, about how many times cheaper is the separable conv?
# Which of the two terms dominates, and what does that say about where MobileNet spends its time?
#
# BEGIN SOLUTION
# *Answer.* Standard C*N*k^2, depthwise C*k^2, pointwise C*N: ratio 1/N + 1/k^2 = 1/256 + 1/9, about
# 1/8.7, so 8 to 9 times cheaper. The 1/k^2 term (the pointwise conv's share) dominates: most of
# MobileNet's multiply-adds are in its 1x1 convolutions, which is why they are a plain matrix multiply.
# END SOLUTION

# %%
def separable_ratio(n_out, k):
    # BEGIN SOLUTION
    return 1 / n_out + 1 / k ** 2
    # END SOLUTION


check_mac_ratio(separable_ratio)
v1 = zoo.summary(zoo.get_model("mobilenet_v1"), (3, 32, 32))
print("\n".join(line for line in v1.splitlines() if line.startswith(("Total params", "Total MACs"))))

# %% [markdown]
# ## The inverted residual, step by step
# Narrow (24 channels) -> wide (x6 = 144) -> depthwise 3x3 on the wide tensor -> narrow again,
# with no activation after the projection (the linear bottleneck), plus the shortcut.

# %%
x, _ = sample_image("photo")
model = zoo.get_model("mobilenet_v2").eval()
st = Stepper(model, x)
block = [s for s in st if s.name.startswith("features.3.")]
for s in block:
    view = s.im2col()
    print(f"{s.name:<28} {s.kind:<12} {s.shapes():<44} {'' if view is None else view.path}")
report("the block's steps: expand, depthwise, project, add",
       [s.name.split(".")[2] for s in block if s.kind == "Conv2d"] + [block[-1].kind],
       "['expand', 'depthwise', 'project', 'add']",
       [s.name.split(".")[2] for s in block if s.kind == "Conv2d"] + [block[-1].kind] ==
       ["expand", "depthwise", "project", "add"])
dw = st["features.3.depthwise.conv"]
print(dw.im2col())
result = dw.gradcheck(samples=16)
print(result)
report("depthwise step gradcheck passed", result.passed, "True", result.passed)
save_figure(st["features.3.depthwise.relu"].show(max_maps=48), "05_mobilenet_depthwise_maps.png")

# %%
summary()   # "n of m checks passed"; as a script, exit status 1 when any failed
