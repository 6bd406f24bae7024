"""The backward, one step at a time, and a bisector that names the step whose backward is wrong.

``st.backward(label)`` runs the whole backward once and keeps the gradient arriving at every step;
``st.step_back()`` then walks it from the output towards the input: each call returns a ``BackStep``,
the gradient arriving at one step and the gradients that step alone sends to its inputs (its own
backward, run again on a copy: one recorded step, which may be several Functions, a conv and its bias).

``st.bisect()`` runs the model-level gradcheck (loss -> input, float64, sampled); when it fails, walks the
steps from the output side checking each one's own backward, names the first that fails, and locates
where in its input the wrong gradients sit (``ErrorLocation``), e.g. "errors only where pooling windows
overlap": the signature of a backward that writes ``=`` where it should add ``+=``.
"""
import copy
from dataclasses import dataclass

import numpy as np

from ..autograd import no_grad
from ..device import to_numpy, using_device
from ..gradcheck import relative_error
from ..tensor import Tensor
from .page_facts import window_of
from .sampled_gradcheck import TOLERANCE, _derivative, sparse_gradcheck


@dataclass
class BackStep:
    """One step of the backward: ``grad_output`` (the gradient arriving at the step's output) and
    ``grad_inputs`` (what the step's backward sends to each input)."""
    step: object
    grad_output: np.ndarray
    grad_inputs: tuple

    def __str__(self):
        outs = ", ".join(f"{g.shape} |g| {np.linalg.norm(g):.3g}" for g in self.grad_inputs)
        return (f"backward through {self.step.index} {self.step.name} ({self.step.kind}): "
                f"{self.grad_output.shape} |g| {np.linalg.norm(self.grad_output):.3g} -> {outs}")

    __repr__ = __str__


def local_backward(step, grad_output):
    """The gradients step ``step`` alone sends to its inputs for ``grad_output`` (a float32 re-run)."""
    fn, _ = step._runner(np.float32)
    xs = [Tensor(x, requires_grad=True, device=step.device) for x in step.inputs]
    with using_device(step.device):
        y = fn(*xs)
        y.backward(Tensor(np.asarray(grad_output, dtype=y.data.dtype), device=step.device).data)
    return tuple(np.zeros(x.shape, x.dtype) if x.grad is None else np.array(to_numpy(x.grad)) for x in xs)


def overlap_counts(step):
    """(H, W): how many windows of a convolution / pooling step read each input pixel; None otherwise."""
    w = window_of(step)
    if w is None:
        return None
    counts = []
    for axis in (0, 1):
        k, s, p, d = (v[axis] for v in w)
        n, out = step.inputs[0].shape[2 + axis], step.output.shape[2 + axis]
        c = np.zeros(n, int)
        for o in range(out):
            for i in range(k):
                pos = o * s - p + i * d
                if 0 <= pos < n:
                    c[pos] += 1
        counts.append(c)
    return np.outer(*counts)


@dataclass
class ErrorLocation:
    """Where a step's input gradient is wrong: ``wrong`` (a boolean mask over the input's checked
    elements), ``checked`` (which were checked) and a sentence, ``where``."""
    step: object
    wrong: np.ndarray
    checked: np.ndarray
    where: str

    def __str__(self):
        return f"{self.step.name} ({self.step.kind}): {self.where}"


def _describe(step, wrong, checked):
    n_wrong, n_checked = int(wrong.sum()), int(checked.sum())
    if n_wrong == 0:
        return f"no wrong gradient among the {n_checked} input elements checked"
    text = f"{n_wrong} of {n_checked} input elements checked have a wrong gradient"
    counts = overlap_counts(step)
    if counts is not None and wrong.ndim == 4:
        overlapped = np.broadcast_to(counts > 1, wrong.shape)
        if overlapped.any() and not (wrong & ~overlapped).any():
            return text + (f"; errors only where windows overlap (pixels read by 2 or more windows: "
                           f"{int((wrong & overlapped).sum())} of {int((checked & overlapped).sum())} checked)")
        if not overlapped.any():
            text += "; the windows do not overlap"
    idx = np.argwhere(wrong)
    lo, hi = idx.min(axis=0), idx.max(axis=0)
    return text + f"; all inside index box {tuple(int(v) for v in lo)} .. {tuple(int(v) for v in hi)}"


def locate_error(step, max_elements=4096, seed=0, eps=1e-6):
    """Finite differences of every element (at most ``max_elements``, drawn at random) of the step's
    first input against its backward, in float64 on a jittered copy (see recorded_step.JITTER)."""
    fn, _ = step._runner(np.float64)
    rng = np.random.default_rng(seed)
    x0 = step.jittered_inputs(rng)
    weight = rng.standard_normal(step.output.shape)
    xs = [Tensor(x, requires_grad=True, device=step.device) for x in x0]
    with using_device(step.device):
        (fn(*xs) * Tensor(weight, device=step.device)).sum().backward()
        analytic = np.array(to_numpy(xs[0].grad)).reshape(-1)
        probes = [Tensor(x, device=step.device) for x in x0]    # perturbed in place, one element at a time
        flat = probes[0].data.reshape(-1)
        picks = rng.choice(flat.size, size=min(max_elements, flat.size), replace=False)
        wrong, checked = np.zeros(flat.size, bool), np.zeros(flat.size, bool)
        with no_grad():
            for i in picks:
                numeric = _derivative(fn, probes, seed, flat, i, eps, weight)
                checked[i], wrong[i] = True, float(relative_error(numeric, analytic[i])) > TOLERANCE
    shape = step.inputs[0].shape
    wrong, checked = wrong.reshape(shape), checked.reshape(shape)
    return ErrorLocation(step, wrong, checked, _describe(step, wrong, checked))


@dataclass
class BisectReport:
    """``model_check`` (the model-level GradcheckResult); when it failed, ``step`` (the first step, from
    the output side, whose own backward fails), its ``step_check`` and ``location``."""
    model_check: object
    step: object = None
    step_check: object = None
    location: ErrorLocation = None

    @property
    def passed(self):
        return self.model_check.passed

    def __str__(self):
        head = f"model-level gradcheck: {'passed' if self.passed else 'FAILED'} " \
               f"(max rel. error {self.model_check.max_error:.1e})"
        if self.passed:
            return head
        if self.step is None:
            return head + "; yet every step's own backward passes (look at how the steps are joined)"
        return "\n".join([head, f"first failing step from the output: {self.step.index} {self.step.name} "
                                f"({self.step.kind})", f"  {self.step_check}", f"  {self.location}"])

    __repr__ = __str__


def bisect(stepper, samples=16, seed=0):
    """The model-level check, then (only when it fails) each step's own check from the output side."""
    model = copy.deepcopy(stepper.model).to(np.float64)
    x = Tensor(np.array(to_numpy(stepper.x.data), dtype=np.float64), device=stepper.device)
    with using_device(stepper.device):
        check = sparse_gradcheck(lambda t: _first(model(t)), [x], samples=samples, seed=seed, name="model")
    report = BisectReport(check)
    if check.passed:
        return report
    for s in reversed(stepper.steps):
        if not s.inputs:
            continue
        result = s.gradcheck(samples=samples, seed=seed)
        if not result.passed:
            report.step, report.step_check, report.location = s, result, locate_error(s, seed=seed)
            break
    return report


def _first(output):
    return output[0] if isinstance(output, tuple) else output
