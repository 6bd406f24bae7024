"""The GPU's optimizer step: a whole parameter group updated by one kernel launch.

Written per parameter, an update rule is ~8 array operations (optim/sgd.py, optim/adam.py), and on a GPU
every one is a kernel launch: ~430 launches per ResNet-18 step for 62 parameters, most of them on arrays
too small to keep the GPU busy. Here the group is packed once into flat 1-D arrays instead:

    params   [ conv1.weight | bn1.weight | bn1.bias | ... ]      each Parameter's .data is a view of its slice
    state    [ its momentum buffers (or Adam's moments), in the same order ]   each state entry a view too
    grads    concatenated from the .grad arrays each step (one copy kernel)

and one grid-stride kernel (kernels/cuda/optim.cu) applies the rule to every element. The model, the
checkpoints and ``state_dict`` see the same arrays' values as before: they hold the Parameters, and the
views. Anything that replaces a ``.data`` or a state array (``Module.to``, ``load_state_dict`` of the
optimizer, a user) is noticed by identity on the next step and the group is packed again.

Used where the parameters' kernel module has the fused kernel and packs groups (a GPU, or the CUDA emulator),
all of the group's parameters with a gradient share a device and dtype and their state is alike (all or none of
them have it). Anything else takes the per-parameter rule, which computes the same numbers: on the CPU through
the same kernel called per parameter where it has one (``parameter_kernel``; kernels/cpu/optim.py). The CPU
does not pack: packing copies every gradient into the flat array each step, a pass (and, for VGG-16, 136 MB)
more than the step itself needs, which a GPU pays to save launches and a CPU would pay for nothing.
"""
from ..device import device_of, kernels


class FlatGroup:
    """The live parameters of one group and the state entries ``keys``, packed end to end.

    ``data``: the packed parameters (P,); ``state[key]``: the packed state (P,); ``fresh``: the keys whose
    arrays were just made here (no parameter had them) and hold no values yet."""

    def __init__(self, xp, params, states, keys, make):
        self.params, self.keys = list(params), tuple(keys)
        sizes = [p.data.size for p in params]
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        self.slices = [slice(a, a + n) for a, n in zip(starts, sizes)]
        self.data = _pack(xp, [p.data for p in params])
        self.views = self._views(self.data)
        for p, view in zip(params, self.views):
            p.data = view
        self.state, self.state_views, self.fresh = {}, {}, set()
        for key in keys:
            if key in states[0]:
                self.state[key] = _pack(xp, [s[key] for s in states])
            else:
                self.state[key] = make(self.data.size, dtype=self.data.dtype)
                self.fresh.add(key)
            self.state_views[key] = self._views(self.state[key])
            for s, view in zip(states, self.state_views[key]):
                s[key] = view

    def _views(self, flat):
        return [flat[sl].reshape(p.data.shape) for sl, p in zip(self.slices, self.params)]

    def still_packs(self, params, states):
        """Whether these are the packed parameters, and they and their state still hold the views made here
        (nothing replaced an array since: in-place writes into the views are fine)."""
        return (len(params) == len(self.params) and all(a is b for a, b in zip(params, self.params))
                and all(p.data is v for p, v in zip(params, self.views))
                and all(s.get(key) is v for key in self.keys for s, v in zip(states, self.state_views[key])))

    def grads(self, xp):
        """The gradients, packed in the parameters' order (one copy)."""
        return _pack(xp, [p.grad for p in self.params])


def _pack(xp, arrays):
    """The arrays' values end to end in a new 1-D array: one concatenate (one copy kernel on a GPU)."""
    return xp.concatenate([a.reshape(-1) for a in arrays])


def fused_kernel(params, name):
    """The fused step ``name`` (kernels/cuda/optim.py) for these parameters, or None where they take the
    per-parameter rule: on the CPU, or when they are not all on one device in one dtype."""
    dtype = params[0].data.dtype
    return _step_kernel(params, name, packed=True, fits=lambda p: p.data.dtype == dtype)


def parameter_kernel(params, name):
    """The step kernel ``name`` to call once per parameter (the CPU's, kernels/cpu/optim.py), or None where the
    parameters take the NumPy rule: their kernels lack it or pack groups instead (a group ``fused_kernel`` could
    not pack: mixed devices or dtypes), or a parameter's array is not C-contiguous."""
    return _step_kernel(params, name, packed=False, fits=lambda p: p.data.flags.c_contiguous)


def _step_kernel(params, name, packed, fits):
    """Kernel ``name`` of the parameters' kernel module when that module packs groups (``packed``) or not, all the
    parameters are on one device, each gradient has its parameter's dtype (the rule's arithmetic is the
    parameter's) and ``fits(p)`` holds for every parameter; else None."""
    module = kernels(params[0].data)
    kernel = getattr(module, name, None)
    if kernel is None or module.pack_optimizer_groups != packed:
        return None
    where = device_of(params[0].data)
    if not all(p.grad.dtype == p.data.dtype and device_of(p.data) == where and fits(p) for p in params):
        return None
    return kernel
