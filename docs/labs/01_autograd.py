# %% [markdown]
# # Lab 1 — Tensors and autograd
#
# A `Tensor` is an array plus three things autograd needs: `grad`, `requires_grad` and `creator`,
# the `Function` that made it (`minitorch_cnn/tensor.py`, `minitorch_cnn/autograd.py`).
# A `Function` has a `forward` on raw arrays and a `backward` right below it; calling it on Tensors
# records the graph. `backward()` walks that graph from the loss to the leaves.
#
# In this lab you (1) write a `Function`, (2) find a planted bug in another one with a gradient
# check, (3) draw the graph of a small expression with `data | grad` in every node.
# Run it as a script (`python docs/labs/01_autograd.py`) or open it as a notebook (jupytext).

# %%
import numpy as np
from labcheck import check_function, report, save_figure

import minitorch_cnn as mt
from minitorch_cnn import Function, Tensor

x = Tensor([[1.0, -2.0], [3.0, 0.5]], requires_grad=True)
y = (x * x).sum()
y.backward()
print("x.grad =", x.grad.tolist(), "(expect 2x)")

# %% [markdown]
# ## Exercise 1: the hyperbolic tangent as a Function
# `forward(x)` returns `tanh(x)` and saves what `backward` needs; `backward(gy)` returns
# `gy * (1 - tanh(x)^2)`. Save the *output*: the derivative is cheapest written with it.

# %%
class Tanh(Function):
    """x: any shape -> tanh(x), same shape; dy/dx = 1 - y^2."""

    def forward(self, x):
        # BEGIN SOLUTION
        self.y = np.tanh(x)
        return self.y
        # END SOLUTION

    def backward(self, gy):
        # BEGIN SOLUTION
        return gy * (1 - self.y ** 2)
        # END SOLUTION


check_function(Tanh, np.tanh, label="tanh dx")

# %% [markdown]
# ## Exercise 2: find the planted bug
# `Softplus(x) = log(1 + e^x)` has derivative `sigmoid(x) = 1 / (1 + e^-x)`. The backward below is
# wrong. Run the check, read the error (anything above 1e-2 is a bug, not rounding), then fix it.

# %%
class BuggySoftplus(Function):
    """x -> log(1 + exp(x)); dy/dx should be sigmoid(x)."""

    def forward(self, x):
        self.x = x
        return np.log1p(np.exp(x))

    def backward(self, gy):
        return gy * np.exp(self.x)               # the planted bug: e^x instead of sigmoid(x)


def softplus(x):
    return np.log1p(np.exp(x))


x0 = Tensor(np.random.default_rng(1).standard_normal((4, 5)), requires_grad=True)
buggy = mt.gradcheck(lambda t: BuggySoftplus()(t), [x0])
print(f"buggy softplus: worst relative error {buggy.max_error:.1e}  <- a bug, not rounding")
report("bug found by gradcheck", buggy.max_error > 1e-2, "True", buggy.max_error > 1e-2)


class Softplus(BuggySoftplus):
    def backward(self, gy):
        # BEGIN SOLUTION
        return gy / (1 + np.exp(-self.x))
        # END SOLUTION


check_function(Softplus, softplus, label="fixed softplus dx")

# %% [markdown]
# ## The graph, micrograd style
# Every tensor points at its `creator`, every Function at its `inputs`. `to_dot` writes that graph in
# Graphviz's language (paste it into `dot -Tpng`); `draw` lays it out with matplotlib, one box per
# tensor showing `data | grad`, after `backward()` has filled the gradients.

# %%
def walk(root):
    """Every (tensor, function) edge of the graph under ``root``, depth first."""
    nodes, edges, stack, seen = [], [], [root], set()
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        nodes.append(t)
        if t.creator is not None:
            for parent in t.creator.inputs:
                edges.append((parent, t, type(t.creator).__name__))
                stack.append(parent)
    return nodes, edges


def label(t):
    data = t.data.item() if t.size == 1 else f"shape {t.shape}"
    grad = "-" if t.grad is None else (f"{t.grad.item():.3f}" if t.size == 1 else "...")
    return f"{data:.3f} | grad {grad}" if isinstance(data, float) else f"{data} | grad {grad}"


def to_dot(root):
    nodes, edges = walk(root)
    lines = ["digraph G { rankdir=LR; node [shape=record];"]
    lines += [f'  n{id(t)} [label="{label(t)}"];' for t in nodes]
    lines += [f'  n{id(a)} -> n{id(b)} [label="{op}"];' for a, b, op in edges]
    return "\n".join(lines + ["}"])


a, b = Tensor(2.0, requires_grad=True), Tensor(-3.0, requires_grad=True)
c = a * b
d = c + a
L = Tanh()(d * Tensor(0.5))
for t in walk(L)[0]:
    t.retain_grad()                    # keep .grad on the inner nodes too, to show it
L.backward(retain_graph=True)          # keep the graph: we draw it next
print(to_dot(L))
report("dL/da", f"{a.grad.item():.4f}", f"{(1 - np.tanh(-2.0) ** 2) * 0.5 * (b.item() + 1):.4f}",
       abs(a.grad.item() - (1 - np.tanh(-2.0) ** 2) * 0.5 * (b.item() + 1)) < 1e-6)


def draw(root):
    from matplotlib.figure import Figure
    nodes, edges = walk(root)
    depth = {id(root): 0}
    for a_, b_, _ in edges:                       # parents sit one column left of their child
        depth[id(a_)] = max(depth.get(id(a_), 0), depth[id(b_)] + 1)
    columns = {}
    for t in nodes:
        columns.setdefault(depth[id(t)], []).append(t)
    pos = {id(t): (-d, i) for d, ts in columns.items() for i, t in enumerate(ts)}
    fig = Figure(figsize=(10, 3.5))
    ax = fig.add_subplot()
    for a_, b_, op in edges:
        (x0, y0), (x1, y1) = pos[id(a_)], pos[id(b_)]
        ax.annotate("", (x1 - 0.3, y1), (x0 + 0.3, y0), arrowprops={"arrowstyle": "->"})
        ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.12, op, ha="center", color="tab:blue")
    for t in nodes:
        ax.text(*pos[id(t)], label(t), ha="center", va="center", bbox={"boxstyle": "round", "fc": "w"})
    ax.set_xlim(-max(columns) - 0.6, 0.6)
    ax.set_ylim(-0.6, max(len(v) for v in columns.values()) - 0.4)
    ax.axis("off")
    ax.set_title("L = tanh((a*b + a) * 0.5): data | grad after backward")
    return fig


save_figure(draw(L), "01_autograd_graph.png")

# %% [markdown]
# **What to take away.** A backward is only right when a gradient check says so; around 1e-7 or less
# (float64) is right, around 1e-2 or more is a bug. Next lab: the convolution, forward and backward.
