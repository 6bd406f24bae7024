"""Ablations: train a zoo model with some of its modules removed (``TrainConfig(ablate=[...])``, on the
command line ``python -m zoo.train ... --ablate NAME,...``).

    model = zoo.get_model("lenet5", in_channels=1)
    ablate(model, ["features.relu1"], (1, 32, 32))     # LeNet-5 without the ReLU of its first stage

Names are the module names ``zoo.summary`` prints (``features.relu1``, ``layer1``, ``features.4``); a name
may be a whole container (``layer1`` removes a ResNet stage). Each named module is replaced by an
``nn.Identity``, so its input flows on unchanged and its parameters leave the model.

Removing a module is only meaningful when what follows still fits: without LeNet-5's ``features.pool1``
the 6 @ 28x28 maps reach ``classifier.fc1``, which was built for 400 inputs. ``ablate`` finds this out
before any training, with one dummy forward pass of the original and of the ablated model (training mode,
so GoogLeNet's auxiliary heads run too), and raises one ``AblationError`` naming the removed module, the
shape it produced and the shape that now flows on instead, and the layer that fails. A removal that changes
the model's output (its final classifier) is refused too, because the loss would silently see other classes.
The dummy passes leave no trace: batch-norm statistics, training modes and the random generator are restored.
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
    shape, output shape)}, None) or, if the pass fails, (None, that record, (failing module name, error))."""
    names = {id(m): name for name, m in model.named_modules()}
    seen, running = {}, []

    def before(module, inputs):
        running.append(names[id(module)])

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
        return None, seen, (running[-1] if running else type(model).__name__, err)
    finally:
        for h in handles:
            h.remove()


def ablate(model, names, input_shape):
    """Remove the named modules (see the module docstring), after checking that the shapes still fit."""
    if not names:
        return model
    _check_names(model, names)
    modes = {id(m): m.training for m in model.modules()}
    buffers = [(m, k, v.copy()) for m in model.modules() for k, v in m._buffers.items() if v is not None]
    rng = mt.get_rng_state()
    try:
        expected, before, _ = _dummy_pass(model, input_shape, watch=set(names))
        remove_modules(model, names)
        got, _, failure = _dummy_pass(model, input_shape)
    finally:
        for m, k, v in buffers:
            m._buffers[k] = v
        for m in model.modules():
            object.__setattr__(m, "training", modes.get(id(m), True))
        mt.set_rng_state(rng)
    changed = [n for n in names if n in before and before[n][0] != before[n][1]]
    if failure is not None:
        where, err = failure
        if changed:
            n = changed[0]
            raise AblationError(f"--ablate {n}: {n} turns {before[n][0]} into {before[n][1]}; without it "
                                f"{before[n][0]} flows on and {where} cannot take it ({err})")
        raise AblationError(f"--ablate {','.join(names)}: the model no longer runs: {where} fails ({err})")
    if got != expected:
        culprit = changed[0] if changed else ",".join(names)
        raise AblationError(f"--ablate {culprit}: the model's output would change from {_describe(expected)} "
                            f"to {_describe(got)}; the loss would silently see other classes")
    return model


def _describe(shapes):
    return str(shapes[0]) if len(shapes) == 1 else str(shapes)
