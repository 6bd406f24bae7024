# %% [markdown]
# # Lab 1 — Tensors and autograd
#
# A `Tensor` is an array plus three things autograd needs: `grad`, `requires_grad` and `creator`,
# the `Function` that made it (`minitorch_cnn/tensor.py`, `minitorch_cnn/autograd.py`).
# A `Function` has a `forward` on raw arrays and a `backward` right below it; calling it on Tensors
# records the graph. `backward()` walks that graph from the loss to the leaves.
#
# In this lab you (1) derive and write a `Function`, (2) build a numeric gradient yourself, (3) find a
# planted bug in another `Function` with it, (4) draw the graph of a small expression with `data | grad`
# in every node. Run it as a script (`python docs/labs/01_autograd.py`) or open it as a notebook (jupytext).
#
# Time: about 1.5 hours. You will be able to: derive a backward from a forward; check any backward
# numerically and read the error it gives; say what `backward()` walks and what it leaves in `.grad`.

# %%
import numpy as np
from labcheck import attempt, check_close, check_function, rel_error, report, save_figure, summary

import minitorch_cnn as mt
from minitorch_cnn import Function, Tensor

x = Tensor([[1.0, -2.0], [3.0, 0.5]], requires_grad=True)
y = (x * x).sum()
y.backward()
print("x.grad =", x.grad.tolist(), "(expect 2x)")

# %% [markdown]
# ## Exercise 1: the hyperbolic tangent as a Function
# `forward(x)` returns `tanh(x)` and saves what `backward` needs; `backward(gy)` returns `gy` times
# the derivative. Derive it yourself: write `tanh(x) = (e^x - e^-x) / (e^x + e^-x)`, differentiate with
# the quotient rule, and express the result with `tanh(x)` itself. That tells you what to save in
# `forward` (the check compares your backward with finite differences, so a wrong derivative shows).
#
# **Question 1.** Why save the output `y` rather than the input `x`? What would `backward` compute if
# it only had `x`?
#
# BEGIN SOLUTION
# *Answer.* d tanh/dx = 1 - tanh(x)^2 = 1 - y^2: with `y` saved the backward is two multiplies; with only
# `x` it would evaluate tanh (two exponentials) again.
# END SOLUTION

# %%
class Tanh(Function):
    """x: any shape -> tanh(x), same shape."""

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
# ## Exercise 2: a numeric gradient of your own
# The checks above trust `mt.gradcheck`. Build its core yourself: for a function `f` from an array to a
# number, estimate every partial derivative by a central difference, nudging one element of `x` by `+h`
# and by `-h` (and putting it back). Then use it on your `Tanh`.
#
# **Question 2.** Why a central difference `(f(x+h) - f(x-h)) / 2h` rather than `(f(x+h) - f(x)) / h`,
# and why not make `h` as small as possible (say 1e-12)?
#
# BEGIN SOLUTION
# *Answer.* The one-sided difference has error O(h) (the h/2 f'' term), the central one O(h^2): the f''
# terms cancel. But each f evaluation carries rounding error about eps * |f| (eps = 2e-16 in float64),
# divided by 2h: at h = 1e-12 that is ~1e-4, far worse. h around 1e-6 balances the two (~1e-10).
# END SOLUTION

# %%
def numeric_gradient(f, x, h=1e-6):
    """f: float64 array -> float; x: float64 array (any shape) -> df/dx, same shape as x."""
    grad = np.zeros_like(x)
    # BEGIN SOLUTION
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = f(x)
        x[i] = old - h
        down = f(x)
        x[i] = old                                   # put it back: f may be called on x again
        grad[i] = (up - down) / (2 * h)
    # END SOLUTION
    return grad


def backward_of(function_class, x):
    """d(sum of the Function's output)/dx, by the Function's own backward."""
    t = Tensor(x.copy(), requires_grad=True)
    function_class()(t).sum().backward()
    return t.grad


xs = np.random.default_rng(2).standard_normal((3, 4))
check_close("your numeric gradient of sum(x sin x)", lambda: numeric_gradient(lambda a: float((a * np.sin(a)).sum()),
                                                                             xs.copy()), np.sin(xs) + xs * np.cos(xs),
            tol=1e-6)
check_close("your Tanh.backward vs your numeric gradient", lambda: backward_of(Tanh, xs),
            lambda: numeric_gradient(lambda a: float(np.tanh(a).sum()), xs.copy()), tol=1e-6)

# %% [markdown]
# ## Exercise 3: find the planted bug
# `Softplus(x) = log(1 + e^x)`. The backward below is wrong. Derive the right derivative, run the
# checks (`mt.gradcheck`, and your own `numeric_gradient`), read the error (anything above 1e-2 is a
# bug, not rounding), then fix it.

# %%
class BuggySoftplus(Function):
    """x: any shape -> log(1 + exp(x)), same shape."""

    def forward(self, x):
        self.x = x
        return np.log1p(np.exp(x))

    def backward(self, gy):
        return gy * np.exp(self.x)               # [solution] the planted bug: e^x instead of sigmoid(x)


def softplus(x):
    return np.log1p(np.exp(x))


x0 = Tensor(np.random.default_rng(1).standard_normal((4, 5)), requires_grad=True)
buggy = mt.gradcheck(lambda t: BuggySoftplus()(t), [x0])
print(f"buggy softplus: worst relative error {buggy.max_error:.1e}  <- a bug, not rounding")
report("bug found by gradcheck", buggy.max_error > 1e-2, "True", buggy.max_error > 1e-2)
mine = attempt(lambda: rel_error(backward_of(BuggySoftplus, xs),
                                 numeric_gradient(lambda a: float(softplus(a).sum()), xs.copy())))
if mine is not None:                   # None: your numeric_gradient is not written yet (reported above)
    report("bug found by your numeric gradient too", f"{mine:.1e}", "> 1e-2", mine > 1e-2)


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

# %%
summary()   # "n of m checks passed"; as a script, exit status 1 when any failed
