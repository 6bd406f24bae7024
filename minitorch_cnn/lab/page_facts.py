"""What the stepper's web page says about each step, as plain data (no HTML here; html_page.py draws it).

``step_facts(stepper)`` -> one dict per step: the output-size formula with the real numbers
(``floor((32 + 2*1 - 3)/1) + 1 = 32``), the receptive field, MACs, parameters and memory.
``feature_map_png(array)`` -> a PNG (bytes) of a step's feature maps side by side, for the page to embed.
"""
import io

import numpy as np

from .. import nn
from ..functional.checks import output_size
from .layer_table import _macs


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def window_of(step):
    """(kernel, stride, padding, dilation) pairs of a convolution or pooling step; None for any other."""
    m = step.module
    if not step._is_module or not isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        return None
    dilation = m.dilation if isinstance(m, nn.Conv2d) else (1, 1)
    return _pair(m.kernel_size), _pair(m.stride), _pair(m.padding), _pair(dilation)


def size_formula(step):
    """The output height's formula with this step's numbers, e.g. ``floor((32 + 2*1 - 3)/1) + 1 = 32``
    (with dilation d the window spans d*(k-1)+1 pixels). None for steps without a sliding window."""
    w = window_of(step)
    if w is None or step.inputs[0].ndim != 4:
        return None
    (k, _), (s, _), (p, _), (d, _) = w
    h = step.inputs[0].shape[2]
    span = f"{k}" if d == 1 else f"({d}*({k}-1)+1)"
    out = output_size(h, k, s, p, d, step.name, step.inputs[0].shape)
    assert out == step.output.shape[2], (step.name, out, step.output.shape)   # the formula is the layer's
    return f"H_out = floor((H + 2*padding - kernel)/stride) + 1 = floor(({h} + 2*{p} - {span})/{s}) + 1 = {out}"


def receptive_fields(steps, image_hw):
    """name -> (receptive field in input pixels, jump: input pixels between neighbouring outputs).

    Follows the recorded tensors: a step's field is the widest of its inputs' fields, grown by
    (k-1)*dilation*jump for a sliding window; a global/adaptive pool or a Linear sees the whole image."""
    by_tensor, out = {}, {}
    whole = max(image_hw)
    for s in steps:
        rf, jump = max((by_tensor.get(i, (1, 1)) for i in s.input_ids), default=(1, 1))
        w = window_of(s)
        if w is not None:
            (k, _), (st, _), _, (d, _) = w
            rf, jump = rf + (k - 1) * d * jump, jump * st
        elif s.kind in ("AdaptiveAvgPool2d", "Linear"):
            rf = whole
        by_tensor[s.output_id] = out[s.name] = (rf, jump)
    return out


def macs(step):
    """Multiply-accumulates of one forward of this step (convolutions and Linear; 0 for the rest)."""
    return _macs(step.module, step.output.shape) if step._is_module else 0   # the summary's count, whole batch


def n_params(step):
    if not step._is_module:
        return 0
    return int(sum(int(np.prod(p.shape)) for p in step.module.parameters()))


def step_facts(stepper):
    """One dict per step, in order, of the numbers the page shows beside the step's pictures."""
    rfs = receptive_fields(stepper.steps, stepper.x.shape[2:])
    facts = []
    for s in stepper.steps:
        plan = s.plan()
        rf, jump = rfs[s.name]
        facts.append({
            "formula": size_formula(s), "receptive_field": rf, "jump": jump, "macs": macs(s),
            "params": n_params(s), "output_bytes": int(s.output.nbytes),
            "scratch_bytes": None if plan is None else [int(plan.forward_bytes), int(plan.backward_bytes)],
            "algorithm": None if plan is None else plan.algorithm,
        })
    return facts


def _tile(maps, max_maps, cell):
    """(C, H, W) -> one greyscale grid image, each map min-max scaled alone, upscaled to about ``cell`` px."""
    maps = maps[:max_maps].astype(np.float64)
    c, h, w = maps.shape
    scale = max(1, cell // max(h, w))
    cols = int(np.ceil(np.sqrt(c)))
    rows = int(np.ceil(c / cols))
    grid = np.full((rows * (h * scale + 2), cols * (w * scale + 2)), 255, np.uint8)
    for i, m in enumerate(maps):
        lo, hi = m.min(), m.max()
        img = np.zeros_like(m) if hi == lo else (m - lo) / (hi - lo)
        img = np.kron((255 * img).astype(np.uint8), np.ones((scale, scale), np.uint8))
        r, q = divmod(i, cols)
        y, x = r * (h * scale + 2), q * (w * scale + 2)
        grid[y:y + h * scale, x:x + w * scale] = img
    return grid


def rgb_png(array, cell=128):
    """PNG bytes of image 0 of a (N, 3, H, W) input as one colour picture (min-max scaled, upscaled)."""
    from PIL import Image
    a = np.asarray(array)[0].astype(np.float64)
    a = (a - a.min()) / (a.max() - a.min() or 1.0)
    scale = max(1, cell // max(a.shape[1:]))
    img = np.kron((255 * a).astype(np.uint8).transpose(1, 2, 0), np.ones((scale, scale, 1), np.uint8))
    buf = io.BytesIO()
    Image.fromarray(img, mode="RGB").save(buf, format="PNG")
    return buf.getvalue()


def feature_map_png(array, max_maps=16, cell=96):
    """PNG bytes of image 0 of ``array``: (N, C, H, W) as a grid of maps, (N, K) as a one-row strip."""
    from PIL import Image
    a = np.asarray(array)[0]
    if a.ndim == 3:
        grid = _tile(a, max_maps, cell)
    else:
        v = a.reshape(1, -1).astype(np.float64)[:, :256]
        lo, hi = v.min(), v.max()
        v = np.zeros_like(v) if hi == lo else (v - lo) / (hi - lo)
        grid = np.kron((255 * v).astype(np.uint8), np.ones((16, max(1, 256 // v.shape[1])), np.uint8))
    buf = io.BytesIO()
    Image.fromarray(grid, mode="L").save(buf, format="PNG", optimize=False)
    return buf.getvalue()
