"""The base class of every optimizer: parameter groups, per-parameter state, checkpoints.

An optimizer owns no parameters. It holds references to the very objects the model
holds and overwrites their ``.data`` arrays in place, so the model sees each update
without being told. (On a GPU, the first step points each ``.data`` at a slice of one
packed array instead, so one kernel launch can update them all: optim/fused.py.)

A parameter is anything with two attributes:

* ``.data`` -- a NumPy or CuPy array, the current value;
* ``.grad`` -- an array of the same shape, or ``None`` when no gradient reached it.

A subclass writes down its update rule for one parameter (``_update``) and, if it
keeps history such as a momentum buffer, what that history starts as
(``_init_state``). Everything else -- looping over groups, skipping parameters
without a gradient, L2 weight decay, saving and loading -- lives here, once.
"""
import copy
import numbers

from ..device import device_of, get_array_module, is_array
from .fused import FlatGroup, fused_kernel


class ParamState:
    """Per-parameter state dicts, looked up by the parameter object itself.

    Works like ``collections.defaultdict(dict)``, but keyed by identity: a dict keyed
    by parameters would need them hashable, and array-like classes that overload
    ``==`` element-wise are not. Identity is what we mean anyway.
    """

    def __init__(self):
        self._entries = {}  # id(param) -> (param, its state dict)

    def __getitem__(self, param):
        if id(param) not in self._entries:
            self._entries[id(param)] = (param, {})
        return self._entries[id(param)][1]

    def __contains__(self, param):
        return id(param) in self._entries

    def __len__(self):
        return len(self._entries)

    def items(self):
        return list(self._entries.values())


class Optimizer:
    """Base class. ``params`` is an iterable of parameters, or of dicts (parameter groups).

    Each group is a dict with a ``"params"`` list and its own hyper-parameters; any
    hyper-parameter a group leaves out comes from ``defaults``. Groups let one model
    train, say, its backbone with a smaller learning rate than its head::

        SGD([{"params": backbone}, {"params": head, "lr": 0.1}], lr=0.01)
    """

    def __init__(self, params, defaults):
        if hasattr(params, "data") or isinstance(params, dict):
            raise TypeError(f"{type(self).__name__}: params should be an iterable of parameters "
                            f"or of dicts, got {type(params).__name__}")
        self.defaults = dict(defaults)
        self.state = ParamState()
        self.param_groups = []
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        """Add a group of parameters, filling in missing hyper-parameters from the defaults."""
        group = dict(group)
        params = group["params"]
        group["params"] = [params] if hasattr(params, "data") else list(params)
        for name, value in self.defaults.items():
            group.setdefault(name, value)
        ids = [id(p) for p in group["params"]]
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        # A parameter listed twice would be updated twice per step.
        if len(set(ids)) != len(ids) or taken.intersection(ids):
            raise ValueError(f"{type(self).__name__}: a parameter appears more than once "
                             "in the parameter groups")
        self.param_groups.append(group)

    def _require(self, name, value, ok, rule):
        """Hyper-parameter check used by subclass constructors: ``value`` must be a real number (not a
        string such as "0.1", which would fail later inside a NumPy update) for which ``ok()`` holds."""
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise TypeError(f"{type(self).__name__}: {name} must be a real number, got {type(value).__name__} "
                            f"{value!r}")
        if not ok():
            raise ValueError(f"{type(self).__name__}: invalid {name}={value!r} (must be {rule})")

    def zero_grad(self):
        """Forget all gradients, so the next backward pass starts from nothing."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self, closure=None):
        """Update every parameter that has a gradient. Returns ``closure()`` if one is given."""
        loss = None if closure is None else closure()
        for index, group in enumerate(self.param_groups):
            # a parameter without a gradient was not used by this loss (or is frozen): nothing to learn from
            live = [p for p in group["params"] if p.grad is not None]
            if live and self._fused_step(index, live, group):
                continue
            for p in live:
                state = self.state[p]
                if not state:
                    state.update(self._init_state(p.data, group))
                else:   # kept on the parameter's device and dtype, also after Module.to moved it
                    _follow_param(state, p.data)
                self._update(p.data, self._gradient(p, group), state, group)
        return loss

    def _fused_step(self, index, params, group):
        """Update all of ``params`` (group number ``index``'s parameters with a gradient) at once and return
        True, or return False to have ``_update`` called per parameter. The GPU's path (optim/fused.py): a
        subclass with a fused kernel calls it here; the base class has none."""
        return False

    def _flat_group(self, index, params, group, kernel, keys, make):
        """Group ``index``'s FlatGroup (optim/fused.py) for the fused ``kernel`` with the state entries ``keys``
        (made with ``make(size, dtype=...)`` when no parameter has them yet), packed again when anything changed;
        None when these parameters take the per-parameter rule (on the CPU, mixed devices or dtypes, or some
        parameters with state and some without)."""
        flats = self.__dict__.setdefault("_flat_groups", {})
        flat = flats.pop(index, None)
        if flat is not None and flat.keys == tuple(keys) and flat.still_packs(params, [self.state[p] for p in params]):
            flats[index] = flat
            return flat
        fn = fused_kernel(params, kernel)     # None on the CPU: asked first, the CPU's step pays only this
        if fn is None:
            return None
        states = [self.state[p] for p in params]
        with_keys = [all(k in s for k in keys) for s in states]
        if any(with_keys) and not all(with_keys):
            return None
        for p, state in zip(params, states):   # saved state loaded elsewhere follows its parameter first
            _follow_param(state, p.data)
        flat = flats[index] = FlatGroup(get_array_module(params[0].data), params, states, keys, make)
        flat.kernel = fn
        return flat

    def _kernel_state(self, p, group):
        """Parameter ``p``'s state, made (``_init_state``) or moved to where ``p`` now is, every array in it
        C-contiguous: what a per-parameter step kernel (kernels/cpu/optim.py) writes through flat views."""
        state = self.state[p]
        if not state:
            state.update(self._init_state(p.data, group))
        _follow_param(state, p.data)   # state loaded from a checkpoint or left behind by Module.to
        for key, value in state.items():
            if is_array(value) and not value.flags.c_contiguous:
                state[key] = get_array_module(value).ascontiguousarray(value)
        return state

    def _gradient(self, p, group):
        """The gradient the update rule sees: ``g + λ·θ`` when weight_decay ``λ`` is set.

        ``λ·θ`` is the gradient of the L2 penalty ``λ/2·‖θ‖²``. We build a new array
        rather than adding into ``p.grad``: the gradient belongs to the caller.
        """
        weight_decay = group.get("weight_decay", 0)
        if weight_decay != 0:
            return p.grad + weight_decay * p.data
        return p.grad

    def _init_state(self, param, group):
        """The state a parameter starts with, e.g. zero moment estimates. None by default."""
        return {}

    def _update(self, param, grad, state, group):
        """Change ``param`` (the ``.data`` array) in place, given its gradient."""
        raise NotImplementedError

    def state_dict(self):
        """A copy of the optimizer's state, torch's layout.

        ``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``
        where parameters are numbered 0, 1, 2, ... across the groups in order. Numbers
        rather than the objects themselves, so a checkpoint can be loaded into a freshly
        built model whose parameters are new objects in the same order.
        """
        index = {}  # id(param) -> its number
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: s for p, s in self.state.items() if s}
        return copy.deepcopy({"state": state, "param_groups": groups})

    def load_state_dict(self, state_dict):
        """Restore what ``state_dict`` saved. Parameters are matched by position."""
        name = f"{type(self).__name__}.load_state_dict"
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}: the saved state has {len(saved_groups)} parameter group(s), "
                             f"this optimizer has {len(self.param_groups)}")
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{name}: parameter group {i} has {len(saved['params'])} parameter(s) "
                                 f"in the saved state but {len(group['params'])} in this optimizer")
        param_of = {i: p for saved, group in zip(saved_groups, self.param_groups)
                    for i, p in zip(saved["params"], group["params"])}

        state = ParamState()
        for i, saved in copy.deepcopy(state_dict["state"]).items():
            if i not in param_of:
                raise ValueError(f"{name}: the saved state refers to parameter {i}, "
                                 f"which no parameter group lists")
            p = param_of[i]
            state[p].update({key: _like_param(value, p.data, name, key) for key, value in saved.items()})

        self.state = state
        self.__dict__.pop("_flat_groups", None)   # the packed state (optim/fused.py) is the old one
        self.param_groups = [{**copy.deepcopy({k: v for k, v in saved.items() if k != "params"}),
                              "params": group["params"]}
                             for saved, group in zip(saved_groups, self.param_groups)]

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines + [")"])


def _like_param(value, param, name, key):
    """A loaded state entry, moved to the parameter's device and dtype (arrays only)."""
    if not is_array(value):
        return value
    if value.shape != param.shape:
        raise ValueError(f"{name}: saved state {key!r} has shape {tuple(value.shape)}, "
                         f"but its parameter has shape {tuple(param.shape)}")
    return device_of(param).send(value).astype(param.dtype, copy=False)


def _follow_param(state, param):
    """Move a parameter's state arrays to where the parameter now is (``Module.to`` changed its
    device or dtype): one isinstance and dtype look-up per array when nothing moved."""
    for key, value in state.items():
        if is_array(value) and (value.dtype != param.dtype or device_of(value) != device_of(param)):
            state[key] = device_of(param).send(value).astype(param.dtype, copy=False)
