"""RMSprop: divide each gradient by a running root-mean-square of recent gradients."""
from ..device import get_array_module
from .optimizer import Optimizer


class RMSprop(Optimizer):
    r"""RMSprop (Hinton, 2012), the same rule as ``torch.optim.RMSprop``.

    For a parameter θ with gradient g, learning rate γ, alpha α, eps ε, momentum μ
    and weight decay λ::

        g ← g + λ·θ                           (weight decay, see Optimizer)
        v ← α·v + (1 − α)·g²                  (running mean of g²)
        ṽ = v
        if centered:
            ḡ ← α·ḡ + (1 − α)·g               (running mean of g)
            ṽ = v − ḡ²                        (running variance of g)
        if μ > 0:
            b ← μ·b + g / (√ṽ + ε)
            θ ← θ − γ·b
        else:
            θ ← θ − γ·g / (√ṽ + ε)

    Like Adagrad, but ``v`` forgets old gradients, so steps do not shrink to zero.
    The centered variant normalises by the variance instead of the raw second moment.
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False):
        self._require("lr", lr, lambda: 0.0 <= lr, ">= 0")
        self._require("eps", eps, lambda: 0.0 <= eps, ">= 0")
        self._require("momentum", momentum, lambda: 0.0 <= momentum, ">= 0")
        self._require("weight_decay", weight_decay, lambda: 0.0 <= weight_decay, ">= 0")
        self._require("alpha", alpha, lambda: 0.0 <= alpha, ">= 0")
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay,
                                  "momentum": momentum, "centered": centered})

    def _init_state(self, param, group):
        xp = get_array_module(param)
        state = {"step": 0, "square_avg": xp.zeros_like(param)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = xp.zeros_like(param)
        if group["centered"]:
            state["grad_avg"] = xp.zeros_like(param)
        return state

    def _update(self, param, grad, state, group):
        xp = get_array_module(param)
        alpha = group["alpha"]
        state["step"] += 1
        v = state["square_avg"]

        v *= alpha
        v += (1 - alpha) * grad * grad
        if group["centered"]:
            g_avg = state["grad_avg"]
            g_avg += (1 - alpha) * (grad - g_avg)  # = α·ḡ + (1 − α)·g, in torch's lerp form
            avg = xp.sqrt(v - g_avg * g_avg) + group["eps"]
        else:
            avg = xp.sqrt(v) + group["eps"]

        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf *= group["momentum"]
            buf += grad / avg
            param -= group["lr"] * buf
        else:
            param -= group["lr"] * grad / avg
