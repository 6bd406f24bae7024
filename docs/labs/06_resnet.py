# %% [markdown]
# # Lab 6 — Residual networks
#
# A residual block learns F(x) and adds x back: y = relu(F(x) + x). When the block halves the map and
# doubles the channels, x is projected by a 1x1 stride-2 conv + BN (the paper's option B).
# Why it helps: the add hands its gradient to both branches unchanged, so the gradient reaching early
# layers does not have to pass through every conv. We measure it with the stepper, with and without
# the shortcuts; and we see that a zero-initialised last BN gamma makes a block start as the identity.
#
# Time: about 1.5 hours. You will be able to: write a residual block with its projection shortcut;
# measure, not just state, how the shortcut carries the gradient; explain zero-gamma initialisation.

# %%
import numpy as np
from labcheck import check_basic_block, check_identity, report, save_figure, summary

import minitorch_cnn as mt
from minitorch_cnn import nn
from minitorch_cnn.lab import Stepper, sample_image

# %% [markdown]
# ## Exercise 1: BasicBlock
# conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN, plus the shortcut: identity when shapes match,
# else `nn.Sequential(conv1x1(stride), BN)`. Names as in `zoo/models/resnet.py`: conv1, bn1, conv2, bn2,
# relu, shortcut (the check loads the zoo block's weights into yours).

# %%
class BasicBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        # BEGIN SOLUTION
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))
        else:
            self.shortcut = nn.Identity()
        # END SOLUTION

    def forward(self, x):
        # BEGIN SOLUTION
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + self.shortcut(x))
        # END SOLUTION


check_basic_block(BasicBlock)

# %% [markdown]
# ## Gradient norms per step, with and without the shortcut
# Two networks of 12 blocks on the photo, identical except that one drops `+ x`. After one backward
# the stepper gives the gradient at every step's output. We run them in eval mode, where BN with its
# fresh running statistics (mean 0, variance 1) is the identity: the plain conv stack alone, with
# PyTorch's default initialisation, shrinks signals and gradients by a constant factor per layer.
# (Training-mode BN renormalises every layer and hides much of the effect at this depth.)

# %%
class Plain(BasicBlock):
    def forward(self, x):
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))


def deep_net(block, depth=12, width=16):
    mt.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), *[block(width, width) for _ in range(depth)],
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))


x, _ = sample_image("photo")
norms = {}
for label, block in (("residual", BasicBlock), ("plain", Plain)):
    st = Stepper(deep_net(block).eval(), x)
    st.backward(3)
    norms[label] = st
    first = np.linalg.norm(st["0"].grad_output)
    print(f"{label:>8}: gradient norm at the first conv's output {first:.2e}, at the last block "
          f"{np.linalg.norm(st['12.bn2'].grad_output):.2e}")
ratio = np.linalg.norm(norms["residual"]["0"].grad_output) / np.linalg.norm(norms["plain"]["0"].grad_output)
report("residual / plain gradient at the first layer", f"{ratio:.1e}x", "> 10", ratio > 10)

from matplotlib.figure import Figure  # noqa: E402

fig = Figure(figsize=(10, 4))
ax = fig.add_subplot()
for label, st in norms.items():
    convs = [s for s in st if s.kind == "Conv2d"]
    ax.semilogy(range(len(convs)), [np.linalg.norm(s.grad_output) for s in convs], "o-", label=label)
ax.set_xlabel("conv layer (input side left)")
ax.set_ylabel("||dL/d output||")
ax.set_title("12 blocks at initialisation (eval mode): gradient reaching each conv, with and without shortcuts")
ax.legend()
save_figure(fig, "06_resnet_grad_norms.png")

# %% [markdown]
# **Question 1.** The plain net's gradient shrinks by about the same factor at every block. Why a
# constant factor, and what does that make the total over 12 blocks?
#
# BEGIN SOLUTION
# *Answer.* In eval mode with fresh statistics each block is the same kind of linear map (two convs with
# the default initialisation, which shrinks the norm by a roughly fixed factor r < 1) followed by ReLUs
# that drop about half; so the gradient is multiplied by about r per block and by r^12 in all:
# exponential in depth. The add gives a path with factor 1, so the residual net's total cannot vanish.
# END SOLUTION

# %% [markdown]
# ## Exercise 2: zero-initialised gamma makes a block the identity
# Set the last BN's gamma (and beta) to zero: F(x) = 0, so y = relu(0 + x) = x for x >= 0.
# A deep ResNet initialised this way starts as a shallow one (Goyal et al., 2017).

# %%
def zero_init_last_bn(block):
    # BEGIN SOLUTION
    block.bn2.weight.data[:] = 0
    block.bn2.bias.data[:] = 0
    # END SOLUTION
    return block


block = zero_init_last_bn(BasicBlock(8, 8).double())
check_identity(block, np.random.default_rng(0).standard_normal((2, 8, 6, 6)))

# %%
summary()   # "n of m checks passed"; as a script, exit status 1 when any failed
