"""Adam: momentum plus a per-coordinate step size from the running mean of g²."""
from ..device import get_array_module
from .fused import fused_kernel, parameter_kernel
from .optimizer import Optimizer


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), the same rule as ``torch.optim.Adam``.

    For a parameter θ with gradient g, learning rate γ, betas (β₁, β₂), eps ε and
    weight decay λ, at step t = 1, 2, ...::

        g ← g + λ·θ                               (weight decay, see Optimizer)
        m ← β₁·m + (1 − β₁)·g                     (running mean of g)
        v ← β₂·v + (1 − β₂)·g²                    (running mean of g²)
        m̂ = m / (1 − β₁ᵗ)       v̂ = v / (1 − β₂ᵗ)
        if amsgrad:  v̂_max ← max(v̂_max, v̂)  and use v̂_max in place of v̂
        θ ← θ − γ·m̂ / (√v̂ + ε)

    ``m`` and ``v`` start at zero, so early on they underestimate; dividing by
    ``1 − βᵗ`` (the bias correction) undoes exactly that shrinkage. Dividing by
    ``√v̂`` gives every coordinate a step of about γ whatever its gradient's scale.
    AMSGrad never lets that denominator shrink, which can fix rare non-convergence.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False):
        self._require("lr", lr, lambda: 0.0 <= lr, ">= 0")
        self._require("eps", eps, lambda: 0.0 <= eps, ">= 0")
        self._require("betas[0]", betas[0], lambda: 0.0 <= betas[0] < 1.0, "in [0, 1)")
        self._require("betas[1]", betas[1], lambda: 0.0 <= betas[1] < 1.0, "in [0, 1)")
        self._require("weight_decay", weight_decay, lambda: 0.0 <= weight_decay, ">= 0")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay, "amsgrad": amsgrad})

    def _init_state(self, param, group):
        xp = get_array_module(param)
        state = {"step": 0, "exp_avg": xp.zeros_like(param), "exp_avg_sq": xp.zeros_like(param)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = xp.zeros_like(param)
        return state

    def _update(self, param, grad, state, group):
        xp = get_array_module(param)
        beta1, beta2 = group["betas"]
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]

        m += (1 - beta1) * (grad - m)  # = β₁·m + (1 − β₁)·g, in torch's lerp form
        v *= beta2
        v += (1 - beta2) * grad * grad
        if group["amsgrad"]:
            v = xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])

        # Bias corrections are scalars, so fold them into the step size and the
        # denominator instead of building m̂ and v̂ as arrays.
        step_size = group["lr"] / (1 - beta1 ** t)
        denom = xp.sqrt(v) / (1 - beta2 ** t) ** 0.5 + group["eps"]
        param -= step_size * m / denom

    def _fused_step(self, index, params, group):
        # The rule above as one kernel pass (kernels/cuda/optim.cu, kernels/cpu/optim.py: the same operations in
        # the same order): on a GPU for every parameter of the group in one launch, over the group packed flat
        # (optim/fused.py), where the bias corrections are one pair of scalars, so every parameter must be at the
        # same step t; on the CPU once per parameter.
        if fused_kernel(params, "adam_step") is None:
            return self._step_each(params, group)
        steps = {self.state[p].get("step", 0) for p in params}
        keys = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())
        xp = get_array_module(params[0].data)
        flat = None if len(steps) > 1 else self._flat_group(index, params, group, "adam_step", keys, xp.zeros)
        if flat is None:
            return False
        t = steps.pop() + 1
        for p in params:
            self.state[p]["step"] = t
        beta1, beta2 = group["betas"]
        flat.kernel(flat.data, flat.grads(xp), flat.state["exp_avg"], flat.state["exp_avg_sq"],
                    flat.state.get("max_exp_avg_sq"), group["betas"], group["eps"], group.get("weight_decay", 0),
                    group["lr"] / (1 - beta1 ** t), (1 - beta2 ** t) ** 0.5)
        flat.fresh.clear()
        return True

    def _step_each(self, params, group):
        """The rule above through the device's kernel, one call per parameter (the CPU); False where there is none."""
        kernel = parameter_kernel(params, "adam_step")
        if kernel is None:
            return False
        beta1, beta2 = group["betas"]
        for p in params:
            state = self._kernel_state(p, group)
            state["step"] += 1
            t = state["step"]
            kernel(p.data, p.grad, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"),
                   group["betas"], group["eps"], group.get("weight_decay", 0), group["lr"] / (1 - beta1 ** t),
                   (1 - beta2 ** t) ** 0.5)
        return True
