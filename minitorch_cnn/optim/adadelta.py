"""Adadelta: Adagrad with forgetting, and a step size measured in the parameter's own units."""
from ..device import get_array_module
from .optimizer import Optimizer


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler, 2012), the same rule as ``torch.optim.Adadelta``.

    For a parameter θ with gradient g, learning rate γ, rho ρ, eps ε and weight
    decay λ::

        g ← g + λ·θ                           (weight decay, see Optimizer)
        v ← ρ·v + (1 − ρ)·g²                  (running mean of g²)
        Δ = √(u + ε) / √(v + ε) · g
        u ← ρ·u + (1 − ρ)·Δ²                  (running mean of the updates²)
        θ ← θ − γ·Δ

    The ratio √u/√v turns a gradient into a step with the units of θ, which is why
    the default learning rate is 1: Adadelta needs no hand-tuned step size.
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0):
        self._require("lr", lr, lambda: 0.0 <= lr, ">= 0")
        self._require("rho", rho, lambda: 0.0 <= rho <= 1.0, "in [0, 1]")
        self._require("eps", eps, lambda: 0.0 <= eps, ">= 0")
        self._require("weight_decay", weight_decay, lambda: 0.0 <= weight_decay, ">= 0")
        super().__init__(params, {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay})

    def _init_state(self, param, group):
        xp = get_array_module(param)
        return {"step": 0, "square_avg": xp.zeros_like(param), "acc_delta": xp.zeros_like(param)}

    def _update(self, param, grad, state, group):
        xp = get_array_module(param)
        rho, eps = group["rho"], group["eps"]
        state["step"] += 1
        v, u = state["square_avg"], state["acc_delta"]

        v *= rho
        v += (1 - rho) * grad * grad
        delta = xp.sqrt(u + eps) / xp.sqrt(v + eps) * grad
        u *= rho
        u += (1 - rho) * delta * delta
        param -= group["lr"] * delta
