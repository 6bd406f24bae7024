"""Ablations: train a zoo model with some of its modules removed (``TrainConfig(ablate=[...])``, on the
command line ``python -m zoo.train ... --ablate NAME,...``).

    model = zoo.get_model("lenet5", in_channels=1)
    ablate(model, ["features.relu1"], (1, 32, 32))     # LeNet-5 without the ReLU of its first stage
    ablate(model, ["features.pool1"], (1, 32, 32))     # ... without its first pool: classifier.fc1 adapts

Names are the module names ``zoo.summary`` prints (``features.relu1``, ``layer1``, ``features.4``); a name
may be a whole container (``layer1`` removes a ResNet stage). Each named module is replaced by an
``nn.Identity``, so its input flows on unchanged and its parameters leave the model.

Removing a pooling stage changes the size of the maps that reach the classifier: without LeNet-5's
``features.pool1``, 16 @ 12x12 = 2,304 features reach ``classifier.fc1``, which was built for 16 @ 5x5 =
400. So that the pooling ablation can be run at all, the first Linear layer that no longer fits is
**replaced by a Linear of the same width taking the new number of features, freshly initialised** (PyTorch's
default, drawn from the run's seed); every other layer keeps its initial weights. This is documented and
printed because it changes more than the removed module: the ablated model has more parameters in that
layer (LeNet-5 without pool1: 276,600 in fc1 instead of 48,120; the study report's parameter count shows
it). Only a Linear layer adapts, and only to the number of features (its input's last dimension);
``zoo.evaluate`` and the study report rebuild the same adapted model. (The alternative, a global average
pool before the classifier, would remove the spatial layout LeNet-5's fc1 reads, a second change.)

Any other shape that no longer fits (a conv given the wrong number of channels) is refused before any
training, with one dummy forward pass of the original and of the ablated model (training mode, so GoogLeNet's
auxiliary heads run too): one ``AblationError`` naming the removed module, the shape it produced and the
shape that now flows on instead, and the layer that fails. A removal that changes the model's output (its
final classifier) is refused too, because the loss would silently see other classes. The dummy passes leave
no trace: batch-norm statistics, training modes and the random generator are restored.
"""
import numpy as np

import minitorch_cnn as mt
from minitorch_cnn import nn, no_grad
from minitorch_cnn.device import device_of
from minitorch_cnn.tensor import Tensor

from .options import UsageError


class AblationError(UsageError):
    """An --ablate request that cannot be honoured, in one line."""


def _check_names(model, names):
    modules = dict(model.named_modules())
    for i, name in enumerate(names):
        if not name or name not in modules:
            top = ", ".join(n for n in modules if n and "." not in n)
            raise AblationError(f"--ablate: {type(model).__name__} has no module {name!r} (its top-level modules: "
                                f"{top}; python -m zoo.summary MODEL lists every layer)")
        if name in names[:i]:
            raise AblationError(f"--ablate: {name!r} is named twice")
        for other in names:
            if other != name and name.startswith(other + "."):
                raise AblationError(f"--ablate: {name!r} lies inside {other!r}, which is removed as a whole")


def remove_modules(model, names):
    """Replace each named module of ``model`` by an Identity, in place (names checked); returns ``model``."""
    _check_names(model, names)
    modules = dict(model.named_modules())
    for name in names:
        parent, _, child = name.rpartition(".")
        setattr(modules[parent], child, nn.Identity())   # a reassigned layer keeps its place in a Sequential
    return model


def _shapes(output):
    outputs = output if isinstance(output, (tuple, list)) else (output,)
    return [tuple(o.shape[1:]) for o in outputs if o is not None]


def _dummy_pass(model, input_shape, watch=()):
    """Run two zero images through ``model`` in training mode. Returns (output shapes, {watched name: (input
    shape, output shape)}, None) or, if the pass fails, (None, that record, (failing module name, error,
    the shape of its input))."""
    names = {id(m): name for name, m in model.named_modules()}
    seen, running = {}, []

    def before(module, inputs):
        running.append((names[id(module)], tuple(inputs[0].shape[1:])))

    def after(module, inputs, output):
        running.pop()
        if names[id(module)] in watch:
            seen[names[id(module)]] = (tuple(inputs[0].shape[1:]), _shapes(output)[0])

    handles = [h for m in model.modules() if m is not model
               for h in (m.register_forward_pre_hook(before), m.register_forward_hook(after))]
    parameter = next(iter(model.parameters()))
    x = Tensor(np.zeros((2, *input_shape), dtype=parameter.dtype), device=device_of(parameter.data))
    try:
        model.train()
        with no_grad():
            return _shapes(model(x)), seen, None
    except (ValueError, RuntimeError, IndexError, TypeError, AssertionError) as err:
        return None, seen, (*(running[-1] if running else (type(model).__name__, None)), err)
    finally:
        for h in handles:
            h.remove()


def _adapt_linear(model, failure, adapted):
    """If the pass failed at a Linear layer given another number of features, replace that layer by one
    taking them (a fresh default initialisation) and note it in ``adapted``; True if it did."""
    name, shape, _ = failure
    module = dict(model.named_modules()).get(name)
    if not (isinstance(module, nn.Linear) and shape and len(shape) == 1 and shape[0] != module.in_features):
        return False
    parent, _, child = name.rpartition(".")
    replacement = nn.Linear(shape[0], module.out_features, bias=module.bias is not None)
    setattr(dict(model.named_modules())[parent], child, replacement.to(device_of(module.weight.data)))
    adapted.append(f"{name} now takes {shape[0]:,} features instead of {module.in_features:,} "
                   f"(re-initialised: {module.in_features * module.out_features:,} -> "
                   f"{shape[0] * module.out_features:,} weights)")
    return True


def ablate(model, names, input_shape, notes=None):
    """Remove the named modules (see the module docstring), after checking that the shapes still fit; a
    Linear layer given another number of features is replaced by one that takes them, and ``notes`` (a list,
    if given) receives one line per such layer."""
    if not names:
        return model
    _check_names(model, names)
    modes = {id(m): m.training for m in model.modules()}
    buffers = [(m, k, v.copy()) for m in model.modules() for k, v in m._buffers.items() if v is not None]
    rng = mt.get_rng_state()
    adapted = []
    try:
        expected, before, _ = _dummy_pass(model, input_shape, watch=set(names))
        remove_modules(model, names)
        got, _, failure = _dummy_pass(model, input_shape)
        while failure is not None and _adapt_linear(model, failure, adapted):
            got, _, failure = _dummy_pass(model, input_shape)
    finally:
        for m, k, v in buffers:
            m._buffers[k] = v
        for m in model.modules():
            object.__setattr__(m, "training", modes.get(id(m), modes[id(model)]))   # an adapted layer: the model's
        mt.set_rng_state(rng)
    changed = [n for n in names if n in before and before[n][0] != before[n][1]]
    if failure is not None:
        where, _, err = failure
        if changed:
            n = changed[0]
            raise AblationError(f"--ablate {n}: {n} turns {before[n][0]} into {before[n][1]}; without it "
                                f"{before[n][0]} flows on and {where} cannot take it ({err})")
        raise AblationError(f"--ablate {','.join(names)}: the model no longer runs: {where} fails ({err})")
    if got != expected:
        culprit = changed[0] if changed else ",".join(names)
        raise AblationError(f"--ablate {culprit}: the model's output would change from {_describe(expected)} "
                            f"to {_describe(got)}; the loss would silently see other classes")
    if notes is not None:
        notes += [f"--ablate: {line}" for line in adapted]
    return model


def _describe(shapes):
    return str(shapes[0]) if len(shapes) == 1 else str(shapes)
