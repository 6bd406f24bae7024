"""A sparse gradient check for one step, in the style of CS231n's ``grad_check_sparse``.

A VGG layer has 65k inputs and 2.4M weights; perturbing each of them twice would take minutes.
Instead we pick ``samples`` random elements of every input and every parameter and compare, for each,

    analytic   dL/dz from backward, with L = sum(f(...) * R) for a fixed random R
    numeric    (L(z + eps) - L(z - eps)) / (2 eps)        central difference, in float64

by the relative error |a - n| / max(1e-8, |a| + |n|). Float64 with eps = 1e-5 leaves about 1e-9
of rounding; anything above 1e-6 is a bug. Two details keep correct layers passing:

* outputs are differenced before they are weighted, so outputs the element does not touch cancel
  exactly (a dead ReLU unit gives numeric 0.0, not 1e-9 of noise against an analytic 0);
* dropout draws a new mask every call, so every evaluation reseeds the generator first;
* a finite difference that carries an element across a kink (0 for ReLU, 6 for ReLU6) or past
  another element (a max pool's runner-up) measures neither side's slope. So where the step eps
  misses, an input element is tried once more with a step of a quarter of its distance to the nearest
  such value (not below ``MIN_STEP``, where rounding takes over; Step.gradcheck's jitter keeps real
  gaps far above it), and the better of the two counts. A correct backward matches one of them;
  a wrong one matches neither.
"""
import numpy as np

from ..autograd import no_grad
from ..device import get_array_module, to_numpy
from ..gradcheck import GradcheckReport, relative_error
from ..random import manual_seed
from ..tensor import Tensor

TOLERANCE = 1e-6


class GradcheckResult(GradcheckReport):
    """The library's report for sampled elements of one step: ``passed`` when every worst relative error
    is below ``TOLERANCE`` (sampled checks keep no full analytic / numeric arrays)."""

    def __init__(self, step_name, names, errors, samples):
        super().__init__(names, errors, analytic=None, numeric=None)
        self.step_name, self.samples = step_name, samples

    @property
    def passed(self):
        return self.max_error < TOLERANCE

    def __str__(self):
        rows = [f"  {name:<14} relative error {err:.1e} (expect < {TOLERANCE:.0e}): "
                f"{'ok' if err < TOLERANCE else 'FAIL'}" for name, err in zip(self.names, self.errors)]
        head = f"gradcheck {self.step_name} ({self.samples} sampled elements per tensor, float64)"
        return "\n".join([head] + rows)

    __repr__ = __str__


KINKS = (0.0, 6.0)
MIN_STEP = 1e-7


def _safe_step(ordered, v, eps):
    """eps, shrunk so that v +- step crosses no other value in ``ordered`` (sorted, kinks included)."""
    k = np.searchsorted(ordered, v)                     # ordered[k] == v: v itself is in there
    gaps = np.abs(ordered[max(k - 1, 0):k + 2] - v)
    return min(eps, max(gaps[gaps > 0].min(initial=np.inf) / 4, MIN_STEP))


def _evaluate(fn, inputs, seed):
    manual_seed(seed)                  # the same dropout mask every time
    out = fn(*inputs)
    return to_numpy(out.data).astype(np.float64)


def _derivative(fn, inputs, seed, flat, i, h, weight):
    """dL/d flat[i] by a central difference with step h, L = sum(fn(inputs) * weight)."""
    old = flat[i].item()   # a number: on CuPy flat[i] is a 0-d view that the writes below would change
    flat[i] = old + h
    plus = _evaluate(fn, inputs, seed)
    flat[i] = old - h
    minus = _evaluate(fn, inputs, seed)
    flat[i] = old
    return float(((plus - minus) * weight).sum()) / (2 * h)


def sparse_gradcheck(fn, inputs, params=(), samples=32, seed=0, eps=1e-5, name="step"):
    """Check ``fn(*inputs)`` at ``samples`` random elements of each input and each (name, Parameter).

    ``inputs`` and ``params`` must be float64 Tensors; the inputs get ``requires_grad``.
    """
    inputs = [Tensor(get_array_module(x.data).ascontiguousarray(x.data), requires_grad=True) for x in inputs]
    named = [(f"input {i}" if len(inputs) > 1 else "input", t) for i, t in enumerate(inputs)]
    named += [(n, p) for n, p in params if p.requires_grad]
    rng = np.random.default_rng(seed)
    manual_seed(seed)
    out = fn(*inputs)
    weight = rng.standard_normal(out.shape)
    for _, t in named:
        t.grad = None
    (out * Tensor(weight, device=out.device)).sum().backward()

    names, errors = [], []
    with no_grad():
        for label, t in named:
            flat = t.data.reshape(-1)                  # a view, on t's device: writing it perturbs t
            picks = rng.choice(flat.size, size=min(samples, flat.size), replace=False)
            analytic = np.zeros(flat.size) if t.grad is None else to_numpy(t.grad).reshape(-1)
            host = to_numpy(flat)
            ordered = np.sort(np.concatenate([host, KINKS])) if label.startswith("input") else None
            worst = 0.0
            for i in picks:
                err = relative_error(analytic[i], _derivative(fn, inputs, seed, flat, i, eps, weight))
                h = eps if ordered is None or err < TOLERANCE else _safe_step(ordered, host[i], eps)
                if h < eps:    # maybe a kink within eps: retry with a step that stays clear of it
                    err = min(err, relative_error(analytic[i], _derivative(fn, inputs, seed, flat, i, h, weight)))
                worst = max(worst, float(err))
            names.append(label)
            errors.append(worst)
    return GradcheckResult(name, names, errors, samples)
