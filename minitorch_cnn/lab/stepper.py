"""``Stepper``: run a model once on an input and keep every step, to read like a table."""
import html

import numpy as np

from .. import functional
from ..autograd import no_grad
from ..device import device as as_device
from ..device import device_of, get_default_device, to_numpy, using_device
from ..random import manual_seed
from ..tensor import Tensor
from .recorded_step import Step
from .recorder import Recorder

# "conv": the algorithm a convolution's ConvPlan chose (with im2col's column matrix K x L);
# "scratch kB": the scratch memory its forward / backward allocate (ConvPlan.forward_bytes, backward_bytes).
COLUMNS = ("#", "name", "type", "input -> output", "mean", "std", "min", "max", "%zero", "fwd ms", "conv",
           "scratch kB")


def default_loss(output, target):
    """Cross-entropy at the output; for a tuple (GoogLeNet's logits, aux1, aux2) the paper's weighting,
    main + 0.3 * each auxiliary loss."""
    if isinstance(output, tuple):
        loss = functional.cross_entropy(output[0], target)
        for aux in output[1:]:
            loss = loss + 0.3 * functional.cross_entropy(aux, target)
        return loss
    return functional.cross_entropy(output, target)


def _model_device(model):
    """The device of the model's first parameter (the default device when it has none)."""
    for p in model.parameters():
        return device_of(p.data)
    return get_default_device()


def _plan_cells(plan):
    """The table's "conv" and "scratch kB" cells of one step (empty for steps that are not convolutions)."""
    if plan is None:
        return ["", ""]
    cols = plan.cols_shape
    conv = plan.algorithm + ("" if cols is None else f" {cols[0]}x{cols[1]}")
    return [conv, f"{plan.forward_bytes / 1e3:.0f} / {plan.backward_bytes / 1e3:.0f}"]


class Stepper:
    """``Stepper(model, x)`` runs ``model(x)`` once and records every step in execution order.

    ``len(st)``, ``st[5]``, ``st["layer1.0.conv1"]`` and ``for s in st`` give ``Step`` objects
    (recorded_step.py). The model runs in whatever mode it is in: ``model.eval()`` for what a trained network
    does, ``model.train()`` to see dropout, batch statistics and GoogLeNet's auxiliary heads.
    ``seed`` fixes dropout's masks, so two Steppers of one model record the same numbers.
    ``device`` ("cpu", "cuda", "cuda-emulator", a Device) moves the model there first; by default it
    stays where it is. Either way ``x`` (a host image from ``sample_image``) is moved to the model's device.
    """

    def __init__(self, model, x, seed=0, device=None):
        self.model = model if device is None else model.to(device)
        self.device = _model_device(model) if device is None else as_device(device)
        if not isinstance(x, Tensor):
            x = Tensor(np.asarray(x), device=self.device)
        elif x.device != self.device:   # a copy on the model's device, as a leaf that keeps requires_grad
            x = Tensor(x.data, requires_grad=x.requires_grad, device=self.device)
        self.x = x
        with using_device(self.device):   # "cuda-emulator" arrays are host arrays: only the default says so
            if not model.training:
                # One unrecorded pass first, so the table's ms do not include one-time costs (Numba loading
                # its kernels, first buffers). Only in eval mode: in training mode a pass would move batch
                # norm's running statistics, so there the first steps' ms include those costs.
                with no_grad():
                    model(self.x)
            manual_seed(seed)
            with Recorder(model) as recorder:
                self.output = model(self.x)
        self.steps = [Step(i, raw, self.device) for i, raw in enumerate(recorder.steps)]
        self._by_name = {}
        for s in self.steps:
            self._by_name.setdefault(s.name, s)
            if s.forward_ms is None:     # a functional op: time one more run of it
                s.forward_ms = s.time(repeat=1)["forward_ms"] if s.inputs else 0.0

    # ---- a list of steps, indexable by position or name ---------------------------------------------
    def __len__(self):
        return len(self.steps)

    def __iter__(self):
        return iter(self.steps)

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in self._by_name:
                close = [n for n in self._by_name if key in n][:5]
                raise KeyError(f"no step named {key!r}" + (f"; did you mean {close}?" if close else ""))
            return self._by_name[key]
        return self.steps[key]

    @property
    def names(self):
        return [s.name for s in self.steps]

    def find(self, kind):
        """Every step of one kind: ``st.find("add")``, ``st.find("ReLU6")``."""
        return [s for s in self.steps if s.kind == kind]

    # ---- gradients ----------------------------------------------------------------------------------
    def backward(self, label, loss_fn=None):
        """Cross-entropy of the output against ``label`` (``loss_fn(output, target)`` replaces it),
        backward through the recorded graph; afterwards every step has ``.grad_output``. Returns the loss."""
        if label is None:
            raise ValueError("Stepper.backward needs an integer class label (sample_image gives None for photos)")
        target = np.full(self.x.shape[0], int(label), dtype=np.int64)
        for s in self.steps:
            s._tensor.grad = None
        loss = (loss_fn or default_loss)(self.output, target)
        loss.backward(retain_graph=True)
        for s in self.steps:
            g = s._tensor.grad
            s.grad_output = None if g is None else np.array(to_numpy(g))
        self._back_cursor = len(self.steps)   # step_back starts again from the output
        return float(loss.item())

    def step_back(self):
        """The next step of the backward, from the output towards the input (backward_steps.BackStep: the
        gradient arriving at the step and what its own backward sends on); None past the first step."""
        from .backward_steps import BackStep, local_backward
        if getattr(self, "_back_cursor", None) is None:
            raise RuntimeError("call Stepper.backward(label) before step_back()")
        while self._back_cursor > 0:
            self._back_cursor -= 1
            s = self.steps[self._back_cursor]
            if s.grad_output is not None and s.inputs:   # steps the loss does not reach have no backward
                return BackStep(s, s.grad_output, local_backward(s, s.grad_output))
        return None

    def bisect(self, samples=16, seed=0):
        """Model-level gradcheck; when it fails, the first step from the output whose own backward fails
        and where in its input the errors sit (backward_steps.BisectReport)."""
        from .backward_steps import bisect
        return bisect(self, samples=samples, seed=seed)

    def grad_norms(self):
        """name -> L2 norm of the gradient at each step's output (after ``backward``)."""
        return {s.name: float(np.linalg.norm(s.grad_output)) for s in self.steps if s.grad_output is not None}

    def plot_grads(self, title=None):
        """Figure: gradient norm per step, input side on the left; functional ops marked."""
        from .figures import grad_norm_plot
        if all(s.grad_output is None for s in self.steps):
            raise RuntimeError("call Stepper.backward(label) before plot_grads()")
        return grad_norm_plot(self.steps, title or f"{type(self.model).__name__}: gradient norm per step")

    # ---- text ---------------------------------------------------------------------------------------
    def rows(self):
        """The table as lists of strings, one per step (columns: ``COLUMNS``)."""
        out = []
        for s in self.steps:
            st = s.stats()
            out.append([str(s.index), s.name, s.kind, s.shapes(), f"{st['mean']:.3g}", f"{st['std']:.3g}",
                        f"{st['min']:.3g}", f"{st['max']:.3g}", f"{100 * st['zero_fraction']:.0f}",
                        f"{s.forward_ms:.2f}", *_plan_cells(s.plan())])
        return out

    def __str__(self):
        rows = [list(COLUMNS)] + self.rows()
        widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
        lines = ["  ".join(c.ljust(w) if i in (1, 2, 3) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                 .rstrip() for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(lines)

    def __repr__(self):
        return f"Stepper({type(self.model).__name__}, {len(self)} steps, input {tuple(self.x.shape)})"

    def to_html(self, path=None, repeat=3, gradcheck=False, samples=8, title=None, extra_html="", attribution=True):
        """The stepper as one self-contained web page (html_page.py): the HTML as a string, also written
        to ``path`` when given. Times are medians of ``repeat`` runs of each step; ``attribution`` adds
        saliency, Grad-CAM, guided backprop and occlusion maps (attribution.py) to its start page."""
        from .html_page import render
        page = render(self, repeat=repeat, gradcheck=gradcheck, samples=samples, title=title, extra_html=extra_html,
                      attribution=attribution)
        if path is not None:
            from ..files import atomic_write_text
            atomic_write_text(path, page)
        return page

    def _repr_html_(self):
        head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in self.rows())
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
