"""Stochastic gradient descent, optionally with (Nesterov) momentum."""
from ..device import get_array_module
from .fused import parameter_kernel
from .optimizer import Optimizer


class SGD(Optimizer):
    r"""Stochastic gradient descent, the same rule as ``torch.optim.SGD``.

    For a parameter θ with gradient g, learning rate γ, momentum μ, dampening τ and
    weight decay λ::

        g ← g + λ·θ                                   (weight decay, see Optimizer)
        if μ ≠ 0:
            b ← g                      on the first step
            b ← μ·b + (1 − τ)·g        on later steps
            g ← g + μ·b   if nesterov,   else   g ← b
        θ ← θ − γ·g

    Momentum keeps a running sum ``b`` of past gradients, so steps keep going in a
    consistent direction and jitter cancels out. Nesterov momentum looks one step
    ahead along ``b`` before stepping.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False):
        self._require("lr", lr, lambda: 0.0 <= lr, ">= 0")
        self._require("momentum", momentum, lambda: 0.0 <= momentum, ">= 0")
        self._require("weight_decay", weight_decay, lambda: 0.0 <= weight_decay, ">= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov=True requires momentum > 0 and dampening = 0 "
                             f"(got momentum={momentum!r}, dampening={dampening!r})")
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov})

    def _update(self, param, grad, state, group):
        momentum, dampening = group["momentum"], group["dampening"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                # Start from the first gradient itself, not from zero: a zero start
                # would make the first steps too short (there is no history to damp yet).
                buf = state["momentum_buffer"] = grad.copy()
            else:
                buf *= momentum
                buf += (1 - dampening) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        param -= group["lr"] * grad

    def _fused_step(self, index, params, group):
        # The rule above as one kernel pass (kernels/cuda/optim.cu, kernels/cpu/optim.py: the same operations in
        # the same order): on a GPU for every parameter of the group in one launch, over the group packed flat
        # (optim/fused.py); on the CPU once per parameter.
        momentum = group["momentum"]
        keys = ("momentum_buffer",) if momentum != 0 else ()
        flat = self._flat_group(index, params, group, "sgd_step", keys, get_array_module(params[0].data).empty)
        if flat is None:
            return self._step_each(params, group)
        buf = flat.state.get("momentum_buffer", flat.data)     # momentum 0: the kernel leaves it alone
        first = "momentum_buffer" in flat.fresh                   # b <- g, as grad.copy() above
        flat.kernel(flat.data, flat.grads(get_array_module(flat.data)), buf, group["lr"], momentum,
                    group["dampening"], group.get("weight_decay", 0), group["nesterov"], first)
        flat.fresh.clear()
        return True

    def _step_each(self, params, group):
        """The rule above through the device's kernel, one call per parameter (the CPU); False where there is none."""
        kernel = parameter_kernel(params, "sgd_step")
        if kernel is None:
            return False
        momentum = group["momentum"]
        for p in params:
            state = self._kernel_state(p, group)
            buf = state.get("momentum_buffer")
            first = momentum != 0 and buf is None
            if first:
                buf = state["momentum_buffer"] = get_array_module(p.data).empty_like(p.data)
            kernel(p.data, p.grad, p.data if buf is None else buf, group["lr"], momentum, group["dampening"],
                   group.get("weight_decay", 0), group["nesterov"], first)
        return True
