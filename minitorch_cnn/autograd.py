"""The reverse-mode engine: ``Function`` (one recorded op) and ``backward`` (the graph walk).

A ``Function`` computes ``forward`` on raw arrays and ``backward`` on raw arrays,
side by side. Calling it on Tensors runs ``forward`` and, when some input needs a
gradient, records itself as the output's ``creator`` so that ``backward`` can find
it later. That is the whole graph: tensors point at the function that made them,
functions point at their input tensors.
"""
import sys

from .config import Config, using_config
from .device import check_same_device, get_array_module


def is_grad_enabled():
    """Whether Functions record graphs now (``Config.grad_enabled``)."""
    return Config.grad_enabled


# Observers of every Function call: each ``hook(fn, inputs, outputs)`` runs after a forward, with the
# input and output Tensors. One general mechanism for tools that must see the operations written inside
# a ``forward`` (a residual ``out + x``, a ``cat``), which module hooks cannot: minitorch_cnn.lab's
# stepper appends here while it records and removes itself afterwards. Empty, it costs one ``if``.
call_hooks = []


def no_grad():
    """Context manager: run forward passes without recording a graph (inference, optimizer steps)."""
    return using_config("grad_enabled", False)


def enable_grad():
    """Context manager: record graphs again inside a ``no_grad`` block."""
    return using_config("grad_enabled", True)


class Function:
    """One differentiable operation.

    Subclasses implement ``forward(*arrays) -> array or tuple of arrays`` and
    ``backward(*grad_outputs) -> one gradient per input`` (an array, or None when
    that input needs none). Anything ``backward`` needs from ``forward`` is saved on
    ``self``; ``self.needs_input_grad[i]`` says whether input ``i`` wants a gradient,
    so a backward can skip work nobody will use. Non-tensor settings (stride,
    padding, ...) are passed to ``__init__``.
    """

    def __call__(self, *inputs):
        # The hot path of every operation (a few microseconds of Python per call): list comprehensions
        # rather than generators, and nothing checked twice; Tensor._from_array trusts the forward's arrays.
        tensors = [x if isinstance(x, Tensor) else as_tensor(x) for x in inputs]
        arrays = [t.data for t in tensors]
        check_same_device(arrays, type(self).__name__)
        # Without grad mode no input wants a gradient, so a forward can skip saving for a backward that
        # will never run (Conv2d keeps its columns only when needs_input_grad says someone will).
        self.needs_input_grad = tuple([t.requires_grad for t in tensors]) if Config.grad_enabled else (
            (False,) * len(tensors))
        outputs = self.forward(*arrays)
        single = type(outputs) is not tuple
        outputs = (outputs,) if single else outputs
        record = True in self.needs_input_grad
        results = [Tensor._from_array(y, record) for y in outputs]
        if record:
            self.inputs = tensors
            self.output_meta = [(y.shape, y.dtype) for y in outputs]
            for i, t in enumerate(results):
                t.creator, t.output_index = self, i
        if call_hooks:
            for hook in list(call_hooks):
                hook(self, tensors, results)
        return results[0] if single else tuple(results)

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, *grad_outputs):
        raise NotImplementedError

    def release(self):
        """Drop everything saved for backward, so the arrays can be freed."""
        self.__dict__.clear()
        self.released = True


def _topological_order(root):
    """Functions reachable from ``root``, each after every function that consumes its outputs.

    An explicit stack instead of recursion: a deep network (ResNet, GoogLeNet)
    has thousands of nodes, and Python's recursion limit is about 1000.
    """
    order, visited = [], set()
    stack = [(root.creator, False)] if root.creator is not None else []
    while stack:
        fn, expanded = stack.pop()
        if expanded:
            order.append(fn)
            continue
        if id(fn) in visited:
            continue
        if getattr(fn, "released", False):
            raise RuntimeError("backward() through a graph that was already freed; "
                               "pass retain_graph=True to the first backward() to keep it")
        visited.add(id(fn))
        stack.append((fn, True))
        for t in fn.inputs:
            if t.creator is not None and id(t.creator) not in visited:
                stack.append((t.creator, False))
    order.reverse()  # post-order reversed: consumers before producers
    return order


def backward(root, grad=None, retain_graph=False):
    """Fill ``.grad`` of every leaf tensor that ``root`` depends on with d(root)/d(leaf)."""
    xp = get_array_module(root.data)
    if not root.requires_grad:
        raise RuntimeError("backward(): this tensor does not require grad (none of the tensors it was computed "
                           "from has requires_grad=True), so there is nothing to differentiate")
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(f"backward() without a gradient needs a scalar output, got shape {root.shape}")
        grad = xp.ones_like(root.data)
    grad = grad.data if hasattr(grad, "creator") else xp.asarray(grad, dtype=root.dtype)
    if grad.shape != root.shape:
        raise ValueError(f"backward(): expected a gradient of shape {tuple(root.shape)} (the tensor's), "
                         f"got {tuple(grad.shape)}")
    if root.creator is None or root.retains_grad:
        if root.requires_grad:
            root.grad = grad.copy() if root.grad is None else root.grad + grad
        if root.creator is None:
            return

    order = _topological_order(root)  # first: it raises a clear error if the graph was already freed
    pending = {id(root.creator): [None] * len(root.creator.output_meta)}
    pending[id(root.creator)][root.output_index] = grad
    for fn in order:
        grads_out = pending.pop(id(fn), None)
        if grads_out is None:
            continue
        # An output nobody used gets a zero gradient, so backward never sees None.
        grads_out = [g if g is not None else xp.zeros(shape, dtype)
                     for g, (shape, dtype) in zip(grads_out, fn.output_meta)]
        grads_in = fn.backward(*grads_out)
        grads_in = list(grads_in) if isinstance(grads_in, tuple) else [grads_in]
        for i, (t, needed) in enumerate(zip(fn.inputs, fn.needs_input_grad)):
            g, grads_in[i] = grads_in[i], None   # taken out: `g` is this loop's one reference (see _alone)
            if not needed or g is None:
                continue
            if g.shape != t.shape:
                raise RuntimeError(f"{type(fn).__name__}.backward returned a gradient of shape {g.shape} "
                                   f"for an input of shape {t.shape}")
            if t.creator is None or t.retains_grad:
                # A copy: the same array may also go to other inputs (Add hands gy to both)
                # or be a view of one, and each tensor's .grad must be its own to edit in place.
                # A leaf takes an array nobody else holds as it is: copying AlexNet's 36 M weight
                # gradients cost ~150 ms of a 1.2 s step (64 MB arrays come fresh from the kernel, page by page).
                if t.grad is not None:
                    t.grad = _accumulate(t.grad, g, holders=2)   # t's attribute and the argument
                else:
                    t.grad = g if t.creator is None and _alone(g) else g.copy()
            if t.creator is not None:
                slots = pending.setdefault(id(t.creator), [None] * len(t.creator.output_meta))
                slot = slots[t.output_index]
                slots[t.output_index] = None   # while `slot` is the one reference: it may be added to in place
                slots[t.output_index] = g if slot is None else _accumulate(slot, g, holders=2)
        if not retain_graph:
            fn.release()


def _accumulate(total, g, holders):
    """total + g: in place when nobody else holds ``total`` (``holders`` references counted by the caller, as
    ``_alone`` counts) and the sum keeps its dtype, else a new array. A tensor used twice (ResNet's block input,
    the four branches reading an Inception block's input) sums its gradients this way; a fresh array for
    each sum is one more activation-sized write (and first touch) per fan-out."""
    if total.dtype == g.dtype and total.flags.writeable and _alone(total, holders):
        total += g
        return total
    return total + g


def _alone(g, holders=1):
    """Whether array ``g`` is held by nobody but its ``holders`` (backward's loop variable, by default; CPython
    counts 2 + holders references here, with this call's argument and getrefcount's own) and, if a view, views an
    array nobody
    else holds (its ``.base``, the local ``base`` and getrefcount's: 3). Then no one can see an edit of it.
    A gradient the Function also kept, or handed to two inputs, or a view of another gradient, counts more."""
    base = g.base   # a view of another array of its kind (not of a bytes object, say: read-only) or none
    return sys.getrefcount(g) <= 2 + holders and (base is None or (
        type(base) is type(g) and base.base is None and sys.getrefcount(base) <= 3))   # + `base` here


# Function.__call__ wraps arrays in Tensors, and tensor.py needs Function first, so the link is
# made here, once, at import time: a per-call import cost ~1 us on every operation.
from .tensor import Tensor, as_tensor  # noqa: E402
