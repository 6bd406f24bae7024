"""Record one forward pass as a list of steps: every leaf module, and every Function called between them.

Module hooks (``nn/module.py``) see layers; they cannot see ``out + x`` or ``F.cat([...])`` written
inside a block's ``forward``. ``autograd.call_hooks`` sees every Function call. Together, with a stack
of the modules whose forward is running, they tell the two apart:

* a leaf module (no children) finishing            -> a step, named as in ``model.named_modules()``
* a Function called while a leaf is running        -> part of that leaf (its conv2d, its batch_norm): skipped
* a Function called while only containers run      -> a step of its own, e.g. ``layer1.0.add``
"""
import copy
import time

from .. import autograd
from ..device import is_array
from ..tensor import Tensor


class RawStep:
    """What the recorder saw; ``Step`` (recorded_step.py) turns it into the student-facing object."""

    def __init__(self, name, kind, module, inputs, output, forward_ms, replay):
        self.name, self.kind, self.module = name, kind, module
        self.inputs, self.output = inputs, output          # the live Tensors of the recorded pass
        self.forward_ms, self.replay = forward_ms, replay  # replay(*tensors) -> Tensor: run this step again


def _is_leaf(module):
    return not any(m is not None for m in module._modules.values())


def function_template(fn):
    """A fresh copy of a called Function that can run again: its settings (dim, shape, ...) without
    the arrays its last forward saved for backward."""
    template = copy.copy(fn)
    template.__dict__ = {k: v for k, v in fn.__dict__.items()
                         if k not in ("inputs", "output_meta", "needs_input_grad")
                         and not is_array(v) and not isinstance(v, Tensor)}
    return template


class Recorder:
    """``with Recorder(model) as rec: model(x)``; afterwards ``rec.steps`` lists RawSteps in order."""

    def __init__(self, model):
        self.model = model
        self.names = {}
        for name, m in model.named_modules():
            self.names.setdefault(id(m), name)
        self.stack, self.steps, self.handles, self.used = [], [], [], {}

    def __enter__(self):
        for m in self.model.modules():
            self.handles.append(m.register_forward_pre_hook(self._enter_module))
            self.handles.append(m.register_forward_hook(self._leave_module))
        autograd.call_hooks.append(self._on_function)
        return self

    def __exit__(self, *exc):
        autograd.call_hooks.remove(self._on_function)
        for h in self.handles:
            h.remove()
        return False

    def _unique(self, name):
        """A module called twice (ResNet's shared ``relu``) gets ``name``, then ``name:2``, ..."""
        count = self.used.get(name, 0) + 1
        self.used[name] = count
        return name if count == 1 else f"{name}:{count}"

    def _enter_module(self, module, inputs):
        self.stack.append((module, time.perf_counter()))

    def _leave_module(self, module, inputs, output):
        _, start = self.stack.pop()
        if not _is_leaf(module) or not isinstance(output, Tensor):
            return
        ms = (time.perf_counter() - start) * 1e3
        output.retain_grad()   # so that Stepper.backward can show the gradient arriving here
        name = self._unique(self.names.get(id(module), type(module).__name__))
        self.steps.append(RawStep(name, type(module).__name__, module, tuple(inputs), output, ms, module))

    def _on_function(self, fn, inputs, outputs):
        if self.stack and _is_leaf(self.stack[-1][0]):
            return                      # inside a layer: the layer is the step
        if len(outputs) != 1:
            return
        parent = self.stack[-1][0] if self.stack else None
        kind = type(fn).__name__.lower()
        prefix = self.names.get(id(parent), "") if parent is not None else ""
        name = self._unique(f"{prefix}.{kind}" if prefix else kind)
        template = function_template(fn)
        outputs[0].retain_grad()
        replay = lambda *xs, t=template: copy.copy(t)(*xs)   # noqa: E731  a new Function per call
        self.steps.append(RawStep(name, kind, parent, tuple(inputs), outputs[0], None, replay))
