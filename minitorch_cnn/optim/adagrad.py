"""Adagrad: each coordinate's step shrinks with the total g² it has seen."""
from ..device import get_array_module
from .optimizer import Optimizer


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011), the same rule as ``torch.optim.Adagrad``.

    For a parameter θ with gradient g, learning rate γ, lr_decay η, eps ε and weight
    decay λ, at step t = 1, 2, ...::

        g ← g + λ·θ                        (weight decay, see Optimizer)
        γ̃ = γ / (1 + (t − 1)·η)
        s ← s + g²                         (s starts at initial_accumulator_value)
        θ ← θ − γ̃·g / (√s + ε)

    Coordinates with large or frequent gradients get small steps, rare ones keep
    large steps. Because ``s`` only grows, the steps shrink forever.
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10):
        self._require("lr", lr, lambda: 0.0 <= lr, ">= 0")
        self._require("lr_decay", lr_decay, lambda: 0.0 <= lr_decay, ">= 0")
        self._require("weight_decay", weight_decay, lambda: 0.0 <= weight_decay, ">= 0")
        self._require("initial_accumulator_value", initial_accumulator_value,
                      lambda: 0.0 <= initial_accumulator_value, ">= 0")
        self._require("eps", eps, lambda: 0.0 <= eps, ">= 0")
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value})

    def _init_state(self, param, group):
        xp = get_array_module(param)
        return {"step": 0, "sum": xp.full_like(param, group["initial_accumulator_value"])}

    def _update(self, param, grad, state, group):
        xp = get_array_module(param)
        state["step"] += 1
        lr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] += grad * grad
        param -= lr * grad / (xp.sqrt(state["sum"]) + group["eps"])
