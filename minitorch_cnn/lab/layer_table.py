"""A Keras-style layer table for any Module: shapes, parameters, multiply-adds and memory.

    print(zoo.summary(model, (3, 32, 32)))            # or zoo.print_summary(...); the same functions
    python -m zoo.summary resnet18 --in-channels 1 --batch-size 64      # (zoo/summary.py is the CLI)

Nothing is typed in: a forward hook on every leaf layer records what one dummy forward pass (eval mode,
no graph) really produces, and the numbers come from those shapes and the layers' own settings.

Columns, one row per leaf layer in execution order (a layer called twice gets two rows):

* Output shape  with the batch as None.
* Param #       the layer's parameters plus its floating-point buffers (BatchNorm's running_mean and
                running_var), counted on the first call only, so the column sums to "Total params".
                ``num_batches_tracked`` is an integer step counter, not a value the network computes
                with, and is not counted.
* MACs          multiply-accumulates per image, for Conv2d (out pixels x C_in/groups x kh x kw) and Linear
                (out x in). Pooling, BatchNorm and activations do no multiply-accumulate and show 0.
* im2col bytes  the column matrix that functional/conv.py's im2col kernel allocates for ``batch_size``
                images: (C_in * kh * kw) x (N * Ho * Wo) x itemsize. Convs on the im2col path build it;
                a 1x1 stride-1 conv multiplies its input directly, a depthwise conv slides each filter
                over its own channel and a Winograd conv transforms 4x4 tiles instead, so those build
                none. The conv's ``ConvPlan`` (``functional.conv.plan_conv``) says which algorithm runs
                and what each pass allocates; every row also carries the plan's ``algorithm``,
                ``forward_bytes`` and ``backward_bytes`` (the lab's Stepper shows the same plan).
                All convs borrow the columns from one shared workspace (``minitorch_cnn.workspace``) and
                backward rebuilds them, so the footer's total is the largest matrix, not the sum.
                Models with Winograd convs get one more footer line: their largest scratch.

Below the table: total / trainable / non-trainable parameters, total MACs, the bytes of parameters
(and buffers), and the bytes of all layer outputs for ``batch_size`` images (layers whose output is a
view of their input, like Flatten or Identity, allocate nothing and are skipped). Concatenations and
residual additions written in a ``forward`` are not layers and are not in the table.
"""
import math

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..device import DEFAULT_DTYPE, device_of, shares_memory
from ..tensor import Tensor
from .conv_views import plan_of


def _counted_buffers(module):
    """Buffers that count as (non-trainable) parameters: floating-point ones, i.e. running statistics."""
    return [b for b in module._buffers.values() if b is not None and b.dtype.kind == "f"]


def _macs(module, out_shape):
    """Multiply-accumulates for one image, from the layer's settings and its output shape (batch dropped)."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return int(np.prod(out_shape)) * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return int(np.prod(out_shape)) * module.in_features
    return 0


def _conv_columns(module, inputs, batch_size, dtype):
    """algorithm, im2col bytes, forward and backward scratch bytes of a conv's ConvPlan for ``batch_size``
    images (Nones and zeros for any other layer)."""
    if not isinstance(module, nn.Conv2d):
        return {"algorithm": None, "im2col_bytes": 0, "forward_bytes": 0, "backward_bytes": 0}
    plan = plan_of(module, (batch_size, *inputs[0].shape[1:]), dtype, device_of(inputs[0].data))
    cols = 0 if plan.cols_shape is None else math.prod(plan.cols_shape) * plan.itemsize
    return {"algorithm": plan.algorithm, "im2col_bytes": cols, "forward_bytes": plan.forward_bytes,
            "backward_bytes": plan.backward_bytes}


def _not_run(model, seen):
    """[(name, parameter count)] of the largest sub-modules none of whose layers ran (GoogLeNet's aux heads)."""
    out, skip = [], ()
    for name, m in model.named_modules():
        leaves = [x for x in m.modules() if not any(True for _ in x.children())]
        if name and not name.startswith(skip) and not any(id(x) in seen for x in leaves):
            count = sum(p.size for p in m.parameters()) + sum(b.size for x in m.modules() for b in _counted_buffers(x))
            out.append((name, count))
            skip += (name + ".",)
    return out


def layer_table(model, input_shape, batch_size=64):
    """Run one dummy image through ``model`` and return (rows, totals) as plain dicts."""
    params = list(model.parameters())
    dtype = params[0].dtype if params else np.dtype(DEFAULT_DTYPE)
    itemsize = np.dtype(dtype).itemsize
    names = {id(m): name for name, m in model.named_modules()}
    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    rows, seen = [], set()

    def record(module, inputs, output):
        first_call = id(module) not in seen
        seen.add(id(module))
        own = sum(p.size for p in module.parameters(recurse=False)) + sum(b.size for b in _counted_buffers(module))
        shape = tuple(output.shape[1:])
        is_view = any(isinstance(x, Tensor) and shares_memory(x.data, output.data) for x in inputs)
        rows.append({"name": names[id(module)], "type": type(module).__name__, "shape": shape,
                     "params": own if first_call else 0, "macs": _macs(module, shape),
                     **_conv_columns(module, inputs, batch_size, dtype),
                     "activation_bytes": 0 if is_view else int(np.prod(shape)) * batch_size * itemsize})

    modes = {id(m): m.training for m in model.modules()}
    handles = [m.register_forward_hook(record) for m in leaves]
    try:
        model.eval()
        with no_grad():
            where = device_of(params[0].data) if params else None
            model(Tensor(np.zeros((1, *input_shape), dtype=dtype), device=where))
    finally:
        for h in handles:
            h.remove()
        for m in model.modules():
            object.__setattr__(m, "training", modes[id(m)])

    trainable = sum(p.size for p in params if p.requires_grad)
    buffers = sum(b.size for m in model.modules() for b in _counted_buffers(m))
    totals = {
        "total": sum(p.size for p in params) + buffers,
        "trainable": trainable,
        "non_trainable": sum(p.size for p in params) - trainable + buffers,
        "macs": sum(r["macs"] for r in rows),
        "param_bytes": sum(p.data.nbytes for p in params)
        + sum(b.nbytes for m in model.modules() for b in _counted_buffers(m)),
        "activation_bytes": sum(r["activation_bytes"] for r in rows),
        "im2col_bytes": max((r["im2col_bytes"] for r in rows), default=0),   # one shared workspace
        "winograd_bytes": max(((r["forward_bytes"], r["backward_bytes"]) for r in rows
                               if r["algorithm"] == "winograd"), default=None, key=sum),
        "not_run": _not_run(model, seen),
        "dtype": str(np.dtype(dtype)),
    }
    return rows, totals


def _mb(n):
    return f"{n:,} bytes ({n / 2 ** 20:.2f} MB)"


def summary(model, input_shape, batch_size=64):
    """The table as a string. ``input_shape`` is one image's shape, e.g. (3, 32, 32)."""
    rows, t = layer_table(model, input_shape, batch_size)
    header = ["Layer (type)", "Output shape", "Param #", "MACs", f"im2col bytes (batch {batch_size})"]
    # a conv's algorithm is shown after its type where it is not plain im2col: "(Conv2d: winograd)"
    kinds = [r["type"] + (f": {r['algorithm']}" if r["algorithm"] not in (None, "im2col") else "") for r in rows]
    cells = [[f"{r['name']} ({kind})", str((None, *r["shape"])), f"{r['params']:,}", f"{r['macs']:,}",
              f"{r['im2col_bytes']:,}"] for r, kind in zip(rows, kinds)]
    widths = [max(len(c[i]) for c in cells + [header]) for i in range(len(header))]

    def line(c):  # names and shapes left-aligned, numbers right-aligned
        return "  ".join(c[i].ljust(w) if i < 2 else c[i].rjust(w) for i, w in enumerate(widths)).rstrip()

    rule = "=" * len(line(header))
    out = [f"Model: {type(model).__name__}, input {(None, *input_shape)}, {t['dtype']}", rule, line(header), rule]
    out += [line(c) for c in cells]
    out += [rule,
            f"Total params: {t['total']:,}",
            f"Trainable params: {t['trainable']:,}",
            f"Non-trainable params: {t['non_trainable']:,}",
            f"Total MACs per image: {t['macs']:,}",
            f"Parameter memory: {_mb(t['param_bytes'])}",
            f"Activation memory (layer outputs, batch {batch_size}): {_mb(t['activation_bytes'])}",
            f"im2col workspace (shared by all convs, batch {batch_size}): {_mb(t['im2col_bytes'])}"]
    if t["winograd_bytes"]:
        fwd, bwd = t["winograd_bytes"]
        out.append(f"Winograd scratch (largest conv, batch {batch_size}): forward {_mb(fwd)}, backward {_mb(bwd)}")
    if t["not_run"]:
        parts = ", ".join(f"{name} ({count:,} params)" for name, count in t["not_run"])
        out.append(f"Not run in eval mode, so not in the table (but in the totals): {parts}")
    return "\n".join(out)


def print_summary(model, input_shape, batch_size=64):
    print(summary(model, input_shape, batch_size))
