"""Which module reads which module's output: found by running the model once, for nn/fold.py and nn/fuse.py.

Two layers may run as one only where nothing else needs what the first one writes: the second must be the
only reader of the first's output. A model's ``forward`` is plain Python, so that is found by watching one
call, ``model(x)``: forward hooks record each candidate's output, pre-hooks each follower's input, and
``autograd.call_hooks`` counts the Functions that read each recorded output.
"""
from .. import autograd
from ..autograd import no_grad
from ..tensor import Tensor


class Replaced:
    """Replacements installed on modules (``Module.add_replacement``): ``remove()``, or the end of a ``with``
    block, takes them off again. ``installed``: [(module, replacement)]."""

    def __init__(self, installed):
        self._installed = installed

    def remove(self):
        for m, replacement in self._installed:
            m.remove_replacement(replacement)
        self._installed = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def find_pairs(model, x, first, second):
    """([(a, b)], calls, model(x)): each call of a module ``b`` (an instance of the ``second`` types) whose
    input is the output of a module ``a`` (of the ``first`` types) that ``model(x)`` calls once and whose output
    no other Function reads and the model does not return (its caller reads that). ``calls``: id(module) -> how
    many times it ran. ``model(x)`` runs once in eval mode under no_grad (so no running statistic or random state
    changes), with unfolded, unfused layers."""
    outputs, inputs, calls, readers = {}, [], {}, {}

    def on_first(m, args, y):
        outputs[id(y)] = (m, y)                  # y held: its id stays its own while tracing

    def on_call(m, args):                        # a module may be of both kinds: one count per call
        calls[id(m)] = calls.get(id(m), 0) + 1
        if isinstance(m, second):
            inputs.append((m, args[0]))

    def on_function(fn, tensors, results):
        for t in tensors:
            if id(t) in outputs:                 # a recorded output (held, so no other tensor has its id)
                readers[id(t)] = readers.get(id(t), 0) + 1

    # hooked modules run their own forward: Module.__call__ skips a replacement while a module has hooks
    handles = [m.register_forward_hook(on_first) for m in model.modules() if isinstance(m, first)]
    handles += [m.register_forward_pre_hook(on_call) for m in model.modules()
                if isinstance(m, first) or isinstance(m, second)]
    was_training = model.training
    model.eval()
    autograd.call_hooks.append(on_function)
    try:
        with no_grad():
            output = model(x if isinstance(x, Tensor) else Tensor(x))
    finally:
        autograd.call_hooks.remove(on_function)
        for h in handles:
            h.remove()
        model.train(was_training)
    returned = {id(t) for t in _tensors(output)}
    pairs = []
    for b, t in inputs:
        a = outputs.get(id(t), (None, None))[0]
        if a is not None and calls[id(a)] == 1 and readers.get(id(t)) == 1 and id(t) not in returned:
            pairs.append((a, b))
    return pairs, calls, output


def _tensors(output):
    """The tensors of a model's output: a Tensor, or one inside a tuple, list or dict (nested)."""
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, dict):
        output = list(output.values())
    return [t for o in output for t in _tensors(o)] if isinstance(output, (tuple, list)) else []
