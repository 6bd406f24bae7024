# %% [markdown]
# # Lab 7 — Inception and auxiliary classifiers
#
# An Inception module runs four branches on the same input (1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 |
# max pool -> 1x1) and concatenates them along channels. The 1x1 "reduce" convs shrink the channels
# before the expensive 3x3 and 5x5 convs. GoogLeNet adds two auxiliary classifiers in the middle,
# which exist only while training, and weights their losses (0.3 in the paper; the course slides use
# 0.7 for the main head and 0.3 for the auxiliary ones). Code: `zoo/models/googlenet.py`.
#
# Time: about 1.5 hours. You will be able to: do a module's channel bookkeeping; count what a 1x1
# reduction saves; turn a paper's sentence about its loss into code, and see its gradient arrive.

# %%
import numpy as np
from labcheck import check_aux_loss, check_close, check_inception_channels, report, save_figure, summary

import zoo
from minitorch_cnn import functional as F
from minitorch_cnn.lab import Stepper, sample_image

# %% [markdown]
# ## Exercise 1: channel bookkeeping
# Given the paper's Table 1 row (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj), how many
# channels leave the module?

# %%
def inception_out_channels(n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj):
    # BEGIN SOLUTION
    return n1x1 + n3x3 + n5x5 + pool_proj
    # END SOLUTION


check_inception_channels(inception_out_channels)

# %% [markdown]
# ## Exercise 2: what the 1x1 reductions save
# Weights of the 5x5 branch of inception 3a (192 channels in, 16 reduce, 32 out) with the reduction,
# against a 5x5 conv straight from 192 to 32 channels (biases left out).

# %%
def five_by_five_weights(c_in, reduce, c_out, use_reduction):
    # BEGIN SOLUTION
    return c_in * reduce + reduce * c_out * 25 if use_reduction else c_in * c_out * 25
    # END SOLUTION


google = zoo.get_model("googlenet")
branch = google.inception3a.branch3
real = sum(m.weight.size for m in branch.modules() if type(m).__name__ == "Conv2d")
with_red, without = five_by_five_weights(192, 16, 32, True), five_by_five_weights(192, 16, 32, False)
report("weights of inception3a's 5x5 branch", with_red, f"== {real}", with_red == real)
print(f"without the 1x1 reduction: {without} weights, {without / with_red:.1f}x more")

# %% [markdown]
# ## The stepper: concatenations, and auxiliary heads only in training

# %%
x, label = sample_image("photo")
train_steps = Stepper(google.train(), x)
eval_steps = Stepper(google.eval(), x)
cat = train_steps["inception3a.cat"]
check_close("cat output vs its four inputs joined", cat.output, np.concatenate(cat.inputs, axis=1))
print("inception3a.cat:", cat.shapes())
aux_train = [n for n in train_steps.names if n.startswith("aux")]
aux_eval = [n for n in eval_steps.names if n.startswith("aux")]
report("aux steps in training / in eval", f"{len(aux_train)} / {len(aux_eval)}", "> 0 / 0",
       len(aux_train) > 0 and not aux_eval)

# %% [markdown]
# ## Exercise 3: the weighted loss
# `outputs = (logits, aux1, aux2)`: the main head and the two auxiliary heads. The paper (Szegedy et al.
# 2014, section 5) says of the auxiliary classifiers: "during training, their loss gets added to the
# total loss of the network with a discount weight (the losses of the auxiliary classifiers were weighted
# by 0.3)". Turn that sentence into the total loss, with `aux_weight` as the discount and `main_weight`
# scaling the main head's loss (1.0 in the paper; the course slides use 0.7). Use `F.cross_entropy`.
#
# **Question 1.** At test time the auxiliary heads are dropped. Why can they be, and why train with them?
#
# BEGIN SOLUTION
# *Answer.* They only add loss terms: the main head's prediction never reads them, so dropping them
# changes nothing at inference. In training they inject gradient into the middle of a 22-layer network
# (aux1's head gets a gradient, see the last check) and act as a regulariser on the middle features.
# END SOLUTION

# %%
def googlenet_loss(outputs, y, aux_weight=0.3, main_weight=1.0):
    # BEGIN SOLUTION
    logits, aux1, aux2 = outputs
    return main_weight * F.cross_entropy(logits, y) + aux_weight * (F.cross_entropy(aux1, y) + F.cross_entropy(aux2, y))
    # END SOLUTION


check_aux_loss(googlenet_loss)
loss = train_steps.backward(label if label is not None else 3,
                            loss_fn=lambda out, y: googlenet_loss(out, y, 0.3, 1.0))
print(f"training loss with aux heads: {loss:.3f}")
fig = train_steps.plot_grads("GoogLeNet (training mode): gradient norm per step; red = concatenations")
save_figure(fig, "07_inception_grad_norms.png")
aux_grad = np.linalg.norm(train_steps["aux1.fc2"].grad_output)
report("gradient reaches aux1's head", f"{aux_grad:.2e}", "> 0", aux_grad > 0)

# %%
summary()   # "n of m checks passed"; as a script, exit status 1 when any failed
