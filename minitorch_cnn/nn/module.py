"""``Module``: a layer or a network. It owns Parameters, buffers and sub-modules, by name.

Names compose with dots exactly as in PyTorch (``features.0.weight``,
``layer1.0.bn1.running_mean``), so a state dict moves between the two
frameworks key for key.
"""
from collections import OrderedDict

import numpy as np

from ..device import SPECS, Device, device, device_of, to_numpy
from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module trains: a leaf that requires a gradient."""

    def __init__(self, data, requires_grad=True):
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class RemovableHandle:
    """Returned by ``register_forward_hook``: call ``remove()`` to unhook."""

    def __init__(self, hooks, key):
        self.hooks, self.key = hooks, key

    def remove(self):
        self.hooks.pop(self.key, None)


class Module:
    """Base class of every layer and model. Subclasses define ``forward``; call the module itself."""

    _hook_counter = 0

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration: attributes of the right type land in the right table ----
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        if name in self._buffers and not isinstance(value, (Parameter, Module)):
            self._buffers[name] = value  # e.g. a running statistic replaced by a new array
            return
        # Drop the name from the other tables only: re-assigning a layer (a new classifier head, say)
        # keeps its place in named_parameters() and state_dict(), as in PyTorch.
        target = "_parameters" if isinstance(value, Parameter) else "_modules" if isinstance(value, Module) else None
        for table in ("_parameters", "_buffers", "_modules"):
            if table != target:
                self.__dict__[table].pop(name, None)
        if target is not None:
            self.__dict__.pop(name, None)
            self.__dict__[target][name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        for table in ("_parameters", "_buffers", "_modules"):
            d = self.__dict__.get(table)
            if d is not None and name in d:
                return d[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for table in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__[table]:
                del self.__dict__[table][name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name, array):
        """State that is saved and moved with the module but not trained (running statistics)."""
        self.__dict__.pop(name, None)
        self._buffers[name] = array

    def register_parameter(self, name, param):
        if param is None:
            self._parameters.pop(name, None)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def add_module(self, name, module):
        self._modules[name] = module

    # ---- calling, with hooks a teaching lab can attach to any layer ----------
    # What may run instead of forward: set by nn/fold.py (a batch norm folded into its conv, eval under no_grad)
    # and nn/fuse.py (a batch norm and its ReLU as one Function, training). While the module has no hooks each
    # is asked in turn; it returns the output, or None where it does not apply (another mode, another input).
    _replacements = ()

    def __call__(self, *inputs, **kwargs):
        if self._replacements and not self._has_hooks():
            for replacement in self._replacements:
                output = replacement(*inputs, **kwargs)
                if output is not None:
                    return output
        for hook in list(self._forward_pre_hooks.values()):
            changed = hook(self, inputs)
            if changed is not None:
                inputs = changed if isinstance(changed, tuple) else (changed,)
        output = self.forward(*inputs, **kwargs)
        for hook in list(self._forward_hooks.values()):
            changed = hook(self, inputs, output)
            if changed is not None:
                output = changed
        return output

    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def _has_hooks(self):
        """Whether a forward hook or pre-hook is attached: such a module runs its own forward, no replacement."""
        return bool(self._forward_hooks or self._forward_pre_hooks)

    def add_replacement(self, replacement):
        """``replacement(*inputs)`` is asked before forward from now on (see ``_replacements``)."""
        object.__setattr__(self, "_replacements", self._replacements + (replacement,))

    def remove_replacement(self, replacement):
        object.__setattr__(self, "_replacements", tuple(r for r in self._replacements if r != replacement))

    def register_forward_hook(self, hook):
        """``hook(module, inputs, output)`` runs after each forward; a non-None return replaces the output."""
        return self._add_hook(self._forward_hooks, hook)

    def register_forward_pre_hook(self, hook):
        """``hook(module, inputs)`` runs before each forward; a non-None return replaces the inputs."""
        return self._add_hook(self._forward_pre_hooks, hook)

    @staticmethod
    def _add_hook(table, hook):
        Module._hook_counter += 1
        table[Module._hook_counter] = hook
        return RemovableHandle(table, Module._hook_counter)

    # ---- traversal ---------------------------------------------------------------
    def named_modules(self, prefix=""):
        """Every module in the tree, depth first, this one first (name '' at the top)."""
        stack = [(prefix, self)]
        seen = set()
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{n}" if name else n, m) for n, m in module._modules.items() if m is not None]
            stack.extend(reversed(children))

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def children(self):
        return (m for _, m in self.named_children())

    def _named_members(self, table, recurse=True):
        seen = set()
        modules = self.named_modules() if recurse else [("", self)]
        for prefix, module in modules:
            for name, value in getattr(module, table).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{prefix}.{name}" if prefix else name), value

    def named_parameters(self, recurse=True):
        return self._named_members("_parameters", recurse)

    def parameters(self, recurse=True):
        return (p for _, p in self.named_parameters(recurse))

    def named_buffers(self, recurse=True):
        return self._named_members("_buffers", recurse)

    def buffers(self, recurse=True):
        return (b for _, b in self.named_buffers(recurse))

    def apply(self, fn):
        for m in list(self.modules())[::-1]:
            fn(m)
        return self

    # ---- modes and gradients --------------------------------------------------------
    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            p.grad = None if set_to_none or p.grad is None else p.grad * 0

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    # ---- dtype and device: one mechanism that maps every parameter and buffer --------
    def _map_arrays(self, convert):
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None:
                    p.data, p.grad = convert(p.data), None if p.grad is None else convert(p.grad)
            for name, b in m._buffers.items():
                if b is not None:
                    m._buffers[name] = convert(b)
        return self

    def to(self, target):
        """``to("cuda")`` / ``to("cpu")`` / ``to(a Device)`` moves every parameter and buffer (the vocabulary of
        ``mt.device``); ``to(np.float64)`` / ``to("float64")`` changes floating dtypes. Returns the module."""
        if isinstance(target, Device) or (isinstance(target, str) and target.partition(":")[0] in
                                           ("cpu", "cuda", "cuda-emulator")):
            where = device(target)
            return self._map_arrays(where.send)
        try:
            dtype = np.dtype(target)
        except TypeError:
            raise ValueError(f"{type(self).__name__}.to: {target!r} is neither a device ({SPECS}) "
                             f"nor a dtype (np.float32, 'float64', ...)") from None
        return self._map_arrays(lambda a: a.astype(dtype) if a.dtype.kind == "f" else a)

    def double(self):
        return self.to(np.float64)

    def float(self):
        return self.to(np.float32)

    # ---- state dict -------------------------------------------------------------------
    def state_dict(self):
        """name -> array for every parameter and buffer, with PyTorch's key names (arrays, not copies)."""
        out = OrderedDict()
        for prefix, m in self.named_modules():
            for table in (m._parameters, m._buffers):
                for name, v in table.items():
                    if v is not None:
                        out[f"{prefix}.{name}" if prefix else name] = v.data if isinstance(v, Tensor) else v
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays into this module's parameters and buffers, in place.

        Every problem (missing keys, unexpected keys, wrong shapes) is collected
        and reported in one ValueError, so a mismatch is fixed in one pass.
        """
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        shapes = [f"{k}: expected {tuple(own[k].shape)}, got {tuple(np.shape(state_dict[k]))}"
                  for k in own if k in state_dict and tuple(own[k].shape) != tuple(np.shape(state_dict[k]))]
        problems = shapes + ([f"missing keys: {missing}"] if missing and strict else []) \
            + ([f"unexpected keys: {unexpected}"] if unexpected and strict else [])
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: " + "; ".join(problems))
        for k, target in own.items():
            if k in state_dict:
                value = state_dict[k]
                value = value.data if isinstance(value, Tensor) else value
                value = device_of(target).send(np.asarray(to_numpy(value)))
                target[...] = value.astype(target.dtype, copy=False)
        return self

    # ---- printing -------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self.named_children()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"
