# %% [markdown]
# # Lab 3 — Pooling, batch norm, ReLU6
#
# 1. max-pool backward: the gradient is *routed* to the tap that won each window (argmax);
# 2. batch norm in training (batch statistics, running averages updated) and evaluation (running ones);
# 3. ReLU6 in MobileNetV2 at initialisation, stepped layer by layer: how many units sit at 6,
#    where the gradient is zero? Framework code: `functional/pool.py`, `functional/norm.py`,
#    `functional/activation.py`.
#
# Time: about 2.5 hours. You will be able to: route a gradient through a max; write batch norm's two modes
# and its backward, derived from the graph; read from a stepper table where an activation passes nothing.

# %%
import numpy as np
from labcheck import (
    attempt,
    check_batch_norm,
    check_close,
    check_max_pool_backward,
    check_saturation,
    report,
    save_figure,
    summary,
)

import minitorch_cnn as mt
import zoo
from minitorch_cnn import nn
from minitorch_cnn.lab import Stepper, sample_image

# %% [markdown]
# ## Exercise 1: max-pool backward by argmax routing
# Non-overlapping `k x k` windows (stride k). Forward keeps the max of each window; backward sends
# `dout[n, c, i, j]` to the one position of window (i, j) that held the max, and zero elsewhere.

# %%
def max_pool_backward(dout, x, k):
    """dout (N, C, H/k, W/k), x (N, C, H, W) -> dx (N, C, H, W)."""
    dx = np.zeros_like(x)
    # BEGIN SOLUTION
    n, c, ho, wo = dout.shape
    for i in range(ho):
        for j in range(wo):
            window = x[:, :, i * k:(i + 1) * k, j * k:(j + 1) * k].reshape(n, c, -1)
            winner = window.argmax(axis=2)                          # first max on ties, as the kernel
            r, s = np.unravel_index(winner, (k, k))
            nn_, cc = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
            dx[nn_, cc, i * k + r, j * k + s] += dout[:, :, i, j]
    # END SOLUTION
    return dx


check_max_pool_backward(max_pool_backward)

# %% [markdown]
# ## Exercise 2: batch norm, training and evaluation
# Training: normalise each channel with the batch's mean and (biased) variance, then update
# `running = (1 - momentum) * running + momentum * batch_stat`, using the *unbiased* variance
# (M / (M - 1)) for `running_var`, as PyTorch does. Evaluation: use the running statistics.

# %%
def batch_norm(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """x (N, C, H, W) -> y; updates running_mean / running_var in place when training."""
    shape = (1, -1, 1, 1)
    # BEGIN SOLUTION
    if training:
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
        m = x.size // x.shape[1]
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += momentum * var * m / (m - 1)
    else:
        mean, var = running_mean, running_var
    x_hat = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    return gamma.reshape(shape) * x_hat + beta.reshape(shape)
    # END SOLUTION


check_batch_norm(batch_norm)

# %% [markdown]
# ## Exercise 3: batch norm backward, from the computational graph
# Draw the graph of the training-mode forward for one channel (M = N*H*W values): the mean, the centred
# x, the variance, the inverse standard deviation, x_hat, then y = gamma * x_hat + beta. Walk it backward
# one node at a time (each node: its local derivative times the gradient arriving at it), then collect the
# three paths that reach x into one expression for dx. Do not look it up: the check compares your three
# gradients with the framework's autograd.
#
# **Question 1.** Why does your dx sum to zero over each channel? (Hint: what does adding a constant to
# every x of a channel do to y?)
#
# BEGIN SOLUTION
# *Answer.* Adding c to every value of a channel shifts the mean by c and leaves x_hat, so y, unchanged:
# the loss does not change along the all-ones direction, so the gradient has no component along it,
# sum(dx) = 0. In the formula: dx = inv_std / M * (M dx_hat - sum(dx_hat) - x_hat * sum(dx_hat * x_hat)),
# and sum(x_hat) = 0.
# END SOLUTION

# %%
def batch_norm_backward(dout, x, gamma, eps=1e-5):
    """Training mode. dout, x (N, C, H, W), gamma (C,) -> (dx (N, C, H, W), dgamma (C,), dbeta (C,))."""
    axes, shape = (0, 2, 3), (1, -1, 1, 1)
    # BEGIN SOLUTION
    m = x.size // x.shape[1]
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    inv_std = 1 / np.sqrt(var + eps)
    x_hat = (x - mean) * inv_std
    dx_hat = dout * gamma.reshape(shape)
    dx = inv_std / m * (m * dx_hat - dx_hat.sum(axis=axes, keepdims=True)
                        - x_hat * (dx_hat * x_hat).sum(axis=axes, keepdims=True))
    return dx, (dout * x_hat).sum(axis=axes), dout.sum(axis=axes)
    # END SOLUTION


r = np.random.default_rng(3)
xb, gb, doutb = r.standard_normal((4, 3, 5, 5)) * 2 + 1, r.standard_normal(3), r.standard_normal((4, 3, 5, 5))
bn = nn.BatchNorm2d(3).double()
bn.weight.data[:] = gb
xt = mt.Tensor(xb, requires_grad=True)
(bn(xt) * mt.Tensor(doutb)).sum().backward()
mine = attempt(lambda: batch_norm_backward(doutb, xb, gb))
if mine is not None:                     # None: not written yet (reported above)
    for name, got, want in zip(("dx", "dgamma", "dbeta"), mine, (xt.grad, bn.weight.grad, bn.bias.grad)):
        check_close(f"batch-norm backward {name}", got, want)

# %% [markdown]
# ## Exercise 4: ReLU6 at initialisation, step by step
# The stepper records every layer of MobileNetV2 on a real image. For each ReLU6 we ask what fraction
# of its outputs is clipped at 6 (zero gradient there) and what fraction is 0.

# %%
def saturated_fraction(a):
    """Fraction of the entries of a ReLU6 output that sit at the upper bound 6."""
    # BEGIN SOLUTION
    return float(np.mean(a >= 6.0))
    # END SOLUTION


check_saturation(saturated_fraction)

x, _ = sample_image("photo")
model = zoo.get_model("mobilenet_v2").train()      # training mode: batch statistics, as in the first step
st = Stepper(model, x)
relu6 = st.find("ReLU6")
fractions = [saturated_fraction(s.output) for s in relu6]
zeros = [s.stats()["zero_fraction"] for s in relu6]
for s, f, z in list(zip(relu6, fractions, zeros))[:6]:
    print(f"{s.name:<28} {s.shapes():<40} at 6: {100 * f:5.2f}%   at 0: {100 * z:5.1f}%")
report("stepper's saturated_fraction agrees", True, "True",
       all(abs(s.stats()["saturated_fraction"] - f) < 1e-12 for s, f in zip(relu6, fractions)))

from matplotlib.figure import Figure  # noqa: E402

fig = Figure(figsize=(10, 3.5))
ax = fig.add_subplot()
idx = np.arange(len(relu6))
ax.bar(idx - 0.2, 100 * np.array(zeros), 0.4, label="% at 0 (ReLU's dead side)")
ax.bar(idx + 0.2, 100 * np.array(fractions), 0.4, label="% at 6 (saturated)")
ax.set_xlabel("ReLU6 step in MobileNetV2 (input side left)")
ax.set_ylabel("% of outputs")
ax.set_title("MobileNetV2 at initialisation on the photo: where ReLU6 passes no gradient")
ax.legend()
save_figure(fig, "03_relu6_saturation.png")

# %% [markdown]
# With batch norm in training mode the pre-activations are roughly unit normal, so almost none reach 6
# at initialisation: the upper clip only starts to matter as the weights grow. About half sit at 0.

# %%
summary()   # "n of m checks passed"; as a script, exit status 1 when any failed
