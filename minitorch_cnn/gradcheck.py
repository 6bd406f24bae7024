"""Check a backward pass against finite differences, the way CS231n teaches it.

For a function f and a fixed random weighting R of its output, L = sum(f(x) * R).
The analytic gradient dL/dx comes from ``backward``; the numerical one from
central differences (a five-point stencil), one element at a time, in float64.
Each element's relative error is |a - n| / max(1e-8, |a| + |n|); the report gives
the worst per input. Around 1e-7 or below is right; 1e-2 or above is a bug.
"""
import numpy as np

from .autograd import no_grad
from .device import device_of, to_numpy
from .tensor import Tensor


def relative_error(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))


class GradcheckReport:
    """Worst relative error per checked tensor; ``report.ok(tol)`` is True when all are below tol."""

    def __init__(self, names, errors, analytic, numeric):
        self.names, self.errors, self.analytic, self.numeric = names, errors, analytic, numeric

    @property
    def max_error(self):
        return max(self.errors, default=0.0)

    def ok(self, tol=1e-6):
        return self.max_error <= tol

    def __str__(self):
        rows = [f"  {name:<20} worst relative error {err:.3e}" for name, err in zip(self.names, self.errors)]
        return "gradcheck:\n" + "\n".join(rows)

    __repr__ = __str__


def _outputs(fn, inputs):
    out = fn(*inputs)
    # copies: an output may be a view of the input (reshape), which the next perturbation would change
    return [np.array(to_numpy(o.data), dtype=np.float64) for o in (out if isinstance(out, tuple) else (out,))]


def _loss(fn, inputs, weights):
    out = fn(*inputs)
    outs = out if isinstance(out, tuple) else (out,)
    return sum((o * w).sum() for o, w in zip(outs, weights))


def gradcheck(fn, inputs, params=(), eps=1e-4, seed=20240917):
    """Compare analytic and numerical gradients of ``fn(*inputs)``.

    ``inputs``: Tensors passed to ``fn``; ``params``: extra Tensors ``fn`` uses
    (a module's parameters, say), or (name, Tensor) pairs such as
    ``module.named_parameters()``. Every one with ``requires_grad`` is checked;
    use float64 data (``module.double()``), or the differences drown in rounding.
    """
    inputs = [x if isinstance(x, Tensor) else Tensor(x) for x in inputs]
    named = [(f"input {i}", t) for i, t in enumerate(inputs)]
    named += [p if isinstance(p, tuple) else (f"param {j}", p) for j, p in enumerate(params)]
    names = [name for name, t in named if t.requires_grad]
    checked = [t for _, t in named if t.requires_grad]
    for t in checked:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: inputs must be float64 for finite differences, got {t.dtype}")
    with no_grad():
        probe = fn(*inputs)
    probes = probe if isinstance(probe, tuple) else (probe,)
    rng = np.random.default_rng(seed)
    weights = [device_of(p.data).send(rng.standard_normal(p.shape)) for p in probes]

    for t in checked:
        t.grad = None
    _loss(fn, inputs, weights).backward()
    analytic = [to_numpy(t.grad) if t.grad is not None else np.zeros(t.shape) for t in checked]

    numeric, host_weights = [], [to_numpy(w) for w in weights]
    with no_grad():
        for t in checked:
            grad = np.zeros(t.shape)
            flat = t.data.reshape(-1)  # a view: perturbing it perturbs t
            for i in range(flat.size):
                old = flat[i].item()
                outs = []
                for step in (2, 1, -1, -2):
                    flat[i] = old + step * eps
                    outs.append(_outputs(fn, inputs))
                flat[i] = old
                # Five-point stencil, f' = (-f(x+2h) + 8f(x+h) - 8f(x-h) + f(x-2h)) / 12h, error O(h^4):
                # it allows a larger h, and so less rounding noise, than the two-point one.
                # Outputs are differenced before they are weighted, so outputs that x_i does not
                # touch cancel exactly instead of adding rounding noise to a big sum.
                change = sum(float(((8 * (b - c) - (a - d)) * w).sum())
                             for a, b, c, d, w in zip(*outs, host_weights))
                grad.reshape(-1)[i] = change / (12 * eps)
            numeric.append(grad)
    errors = [float(relative_error(a, n).max(initial=0.0)) for a, n in zip(analytic, numeric)]
    return GradcheckReport(names, errors, analytic, numeric)
