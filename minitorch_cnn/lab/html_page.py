"""The stepper as one self-contained web page: ``Stepper.to_html()`` and ``python -m zoo.step MODEL --html``.

Everything is inside the one file: feature maps are base64 PNGs, the style and script are inline
(html_assets.py), nothing is fetched. A list of every step on the left; clicking one opens its section:
name, kind, shapes, statistics, the output-size formula with its numbers, receptive field, MACs,
parameters, memory, the conv view its ConvPlan chose, the median time of ``repeat`` runs, the gradcheck
badge and, after ``Stepper.backward``, the gradient arriving at it.
"""
import base64
import html
import time

import numpy as np

from ..device import to_numpy, using_device
from .html_assets import CSS, JS
from .page_facts import feature_map_png, rgb_png, step_facts


def _esc(x):
    return html.escape(str(x))


def _png(array):
    return "data:image/png;base64," + base64.b64encode(feature_map_png(array)).decode("ascii")


def _input_png(x):
    """The input image: in colour when it has 3 channels, as maps otherwise."""
    data = rgb_png(x) if x.ndim == 4 and x.shape[1] == 3 else feature_map_png(x)
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _num(n):
    """12345678 -> '12.3 M' (MACs, parameters)."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return str(n)


def _kb(n):
    return f"{n / 1e3:,.1f} kB"


def _badge(result):
    if result is None:
        return '<span class="badge none">gradcheck not run</span>'
    kind = "pass" if result.passed else "fail"
    return f'<span class="badge {kind}">gradcheck {kind}ed, max rel. error {result.max_error:.1e}</span>'


def _stats_line(a):
    a = np.asarray(a, dtype=np.float64)
    return (f"mean {a.mean():.4g}, std {a.std():.4g}, min {a.min():.4g}, max {a.max():.4g}, "
            f"zero {100 * (a == 0).mean():.0f}%, L2 norm {np.linalg.norm(a):.4g}")


def _facts_rows(s, f, timing):
    rows = [("shapes", s.shapes()), ("output", _stats_line(s.output))]
    if f["formula"]:
        rows.append(("output size", f["formula"]))
    rows.append(("receptive field", f"{f['receptive_field']} x {f['receptive_field']} input pixels "
                                    f"(neighbouring outputs {f['jump']} pixels apart)"))
    rows.append(("MACs", f"{_num(f['macs'])} ({f['macs']:,})"))
    rows.append(("parameters", f"{_num(f['params'])} ({f['params']:,})"))
    memory = f"output {_kb(f['output_bytes'])}"
    if f["scratch_bytes"]:
        memory += (f"; scratch forward {_kb(f['scratch_bytes'][0])}, backward {_kb(f['scratch_bytes'][1])} "
                   f"({f['algorithm']})")
    rows.append(("memory", memory))
    runs = "one run after a warm-up" if timing["repeat"] == 1 else f"medians of {timing['repeat']} runs"
    rows.append(("time", f"forward {timing['forward_ms']:.3f} ms, backward {timing['backward_ms']:.3f} ms "
                         f"({runs}; the recorded pass took {s.forward_ms:.3f} ms)"))
    if s.grad_output is not None:
        rows.append(("gradient", _stats_line(s.grad_output)))
    return "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in rows)


def _section(s, f, timing, check):
    parts = [f'<section class="detail" id="step-{s.index}" hidden>',
             f"<h2>{s.index}. {_esc(s.name)} <small>({_esc(s.kind)})</small></h2>", _badge(check),
             f'<table class="facts">{_facts_rows(s, f, timing)}</table>',
             f'<h3>output feature maps</h3><img class="maps" alt="{_esc(s.name)} output" src="{_png(s.output)}">']
    if s.grad_output is not None:
        parts.append(f'<h3>gradient at the output</h3><img class="maps" alt="{_esc(s.name)} gradient" '
                     f'src="{_png(s.grad_output)}">')
    view = s.im2col()
    if view is not None:
        parts.append(f"<h3>what the convolution multiplies</h3><pre>{_esc(view)}</pre>")
    parts.append("</section>")
    return "\n".join(parts)


def _list_item(s, timing, longest):
    width = int(80 * timing["forward_ms"] / longest) if longest > 0 else 0
    return (f'<li class="step" data-index="{s.index}" title="{_esc(s.shapes())}">{s.index}. {_esc(s.name)} '
            f'<span class="kind">{_esc(s.kind)} {_esc(tuple(s.output.shape))}</span>'
            f'<span class="bar" style="width:{width}px"></span></li>')


def attribution_html(stepper, label=None):
    """The start page's "why did it predict that?" row: saliency, Grad-CAM at the last step with feature
    maps, guided backprop and occlusion for class ``label`` (the predicted class when None)."""
    from . import attribution as attr
    model, x = stepper.model, to_numpy(stepper.x.data)
    if label is None:   # the recorded pass already predicted
        label = int(np.argmax(to_numpy(attr._main_output(stepper.output).data)[0]))
    step = attr.last_map_step(stepper)
    hw = x.shape[2:]
    patch = max(2, hw[0] // 4)
    maps = [("saliency", attr.saliency(model, x, label)),
            (f"Grad-CAM at {step}", attr.gradcam(model, x, step, label, stepper=stepper)),
            ("guided backprop", np.abs(attr.guided_backprop(model, x, label)).max(axis=0)),
            (f"occlusion ({patch}x{patch} patches)", attr.occlusion(model, x, label, patch=patch, stride=patch))]
    cells = "".join(f'<figure><img class="maps attribution" alt="{_esc(name)}" src="{_png(m[None, None])}">'
                    f"<figcaption>{_esc(name)}</figcaption></figure>" for name, m in maps)
    return (f'<h3 id="attribution">Why did it predict class {label}?</h3><div style="display:flex;gap:12px">'
            f"{cells}</div><p>Bright = mattered more. Grad-CAM weights each channel by its mean gradient "
            f"(minitorch_cnn.lab.attribution).</p>")


def render(stepper, repeat=3, gradcheck=False, samples=8, title=None, extra_html="", attribution=True):
    """The page as a string. ``repeat``: runs per step whose median is the time shown; ``gradcheck``: run
    each step's sampled gradcheck (``samples`` elements per tensor) for its badge; ``attribution``: the
    four maps of attribution.py on the start page; ``extra_html``: more for the start page."""
    started = time.perf_counter()
    if attribution:
        with using_device(stepper.device):   # the maps' tensors go where the model is
            extra_html = attribution_html(stepper) + extra_html
    facts = step_facts(stepper)
    timings, checks = [], []
    for s in stepper:
        t = s.time(repeat=repeat) if s.inputs else {"forward_ms": 0.0, "backward_ms": 0.0}
        timings.append({**t, "repeat": repeat})
        checks.append(s.gradcheck(samples=samples) if gradcheck else None)
    longest = max((t["forward_ms"] for t in timings), default=0.0)
    title = title or f"{type(stepper.model).__name__}: {len(stepper)} steps"
    total_macs = sum(f["macs"] for f in facts)
    total_params = sum(p.size for p in stepper.model.parameters())
    passed = sum(c.passed for c in checks if c is not None)
    summary = (f"input {tuple(stepper.x.shape)}; {len(stepper)} steps; {_num(total_macs)} MACs; "
               f"{_num(total_params)} parameters; forward {sum(t['forward_ms'] for t in timings):.1f} ms "
               f"(sum of per-step medians)" + (f"; gradcheck {passed}/{len(checks)} passed" if gradcheck else ""))
    items = "\n".join(_list_item(s, t, longest) for s, t in zip(stepper, timings))
    sections = "\n".join(_section(s, f, t, c) for s, f, t, c in zip(stepper, facts, timings, checks))
    built = time.perf_counter() - started
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title><style>{CSS}</style></head>
<body>
<nav><h1>{_esc(title)}</h1><p class="summary" id="summary">{_esc(summary)}</p><ol id="steps">
{items}
</ol></nav>
<main><div id="intro"><h2>{_esc(title)}</h2><p>Click a step on the left to open it. Built by minitorch_cnn's
Stepper in {built:.1f} s; the input image:</p>
<img class="maps" alt="input" src="{_input_png(to_numpy(stepper.x.data))}">
{extra_html}</div>
{sections}
</main>
<script>{JS}</script>
</body></html>
"""
