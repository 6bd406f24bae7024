"""Where a training step's time goes: seconds per Function (forward and backward), for one zoo model.

    python -m benchmarks.profile resnet18 [--batch 64] [--steps 2] [--twin] [--forward]

Every Function subclass's ``forward`` and ``backward`` is wrapped with a timer
for the duration of the run (the library itself is not changed), then one
warm-up step and ``--steps`` timed steps run. Prints a table sorted by total time;
what is not inside any Function (the optimizer, Python overhead) is listed as "other".

``--twin`` also profiles the model's PyTorch twin (tests/support/torch_twins.py) on the same
batch with ``torch.profiler`` and prints both per kind of work (convolution, batch
norm, pooling, ...) side by side with their ratio: a model's share of time in an op
says where its time goes, this says where it loses to PyTorch.

``--forward`` profiles the forward as evaluation runs it instead (eval mode, no_grad, batch norm
folded into the convolutions: ``benchmarks.models``' forward), for ours and the twin alike.
"""
import argparse
import collections
import time

import zoo
from minitorch_cnn.autograd import Function

from .harness import blas_info, blas_line, format_table, optional_torch, run_on_own_blas_kernel, vector_isa
from .models import _ours as training_step
from .models import _theirs as twin_training_step

# Kinds of work, each named by the words that mark it in our Function names and in PyTorch's aten op
# names (lower case; "::cat", not "cat", which aten::scatter contains); the first kind that matches
# wins, anything else is "other ops".
KINDS = (("convolution", ("conv",)), ("batch norm", ("batchnorm", "batch_norm")),
         ("pooling", ("pool",)), ("activation", ("relu", "threshold", "clamp", "hardtanh")),
         ("concatenation", ("cat.", "::cat")), ("linear", ("linear", "addmm", "aten::mm")),
         ("loss", ("crossentropy", "nll_loss", "log_softmax", "softmax")))


def _all_functions(cls=Function):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_functions(sub)


def _wrap(cls, method, totals):
    original = cls.__dict__[method]

    def timed(self, *args):
        start = time.perf_counter()
        try:
            return original(self, *args)
        finally:
            totals[(cls.__name__, method)] += time.perf_counter() - start
    setattr(cls, method, timed)
    return original


def profile(name, batch, steps, forward=False):
    step = training_step(name, batch)[forward]
    step()  # compile and allocate outside the measurement
    totals = collections.defaultdict(float)
    originals = [(cls, m, _wrap(cls, m, totals)) for cls in set(_all_functions())
                 for m in ("forward", "backward") if m in cls.__dict__]
    try:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        wall = (time.perf_counter() - start) / steps
    finally:
        for cls, m, original in originals:
            setattr(cls, m, original)
    return wall, {k: v / steps for k, v in totals.items()}


def kind_of(name):
    """The kind of work an op does, from its name: ours ("WinogradConv2d") or PyTorch's ("aten::cat")."""
    low = name.lower()
    for kind, marks in KINDS:
        if any(mark in low for mark in marks):
            return kind
    return "other ops"


def profile_twin(name, batch, steps, forward=False):
    """(wall seconds per step, {aten op: self seconds per step}) for the PyTorch twin's training step."""
    torch = optional_torch()
    if torch is None:
        raise SystemExit("benchmarks.profile --twin: PyTorch is not installed (pip install torch==2.13.0)")
    step = twin_training_step(name, batch)[forward]
    step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        wall = (time.perf_counter() - start) / steps
    # The optimizer's aten ops (add_, mul_ inside Optimizer.step) count as "optimizer, Python", as ours do.
    ops = collections.defaultdict(float)
    for event in prof.events():
        if event.name.startswith("aten::") and not _inside_optimizer(event):
            ops[event.name] += event.self_cpu_time_total * 1e-6 / steps
    return wall, ops


def _inside_optimizer(event):
    while event is not None:
        if event.name.startswith("Optimizer."):
            return True
        event = event.cpu_parent
    return False


def by_kind(totals, wall):
    """{kind: seconds} from {op name: seconds}, with what no op accounts for as "optimizer, Python"."""
    kinds = collections.defaultdict(float)
    for op, t in totals.items():
        kinds[kind_of(op)] += t
    kinds["optimizer, Python"] = max(0.0, wall - sum(totals.values()))
    return kinds


def twin_table(ours, theirs):
    """Rows [kind, ours ms, PyTorch ms, ratio] from two {kind: seconds} maps, largest of ours first."""
    rows = []
    for kind in sorted(set(ours) | set(theirs), key=lambda k: -ours.get(k, 0.0)):
        a, b = ours.get(kind, 0.0), theirs.get(kind, 0.0)
        rows.append([kind, f"{a * 1e3:.1f}", f"{b * 1e3:.1f}", f"{a / b:.2f}x" if b > 0 else "-"])
    return rows


def main(argv=None):
    if run_on_own_blas_kernel("benchmarks.profile", argv):
        return None
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=list(zoo.MODELS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--twin", action="store_true", help="also profile the PyTorch twin, per kind of work")
    parser.add_argument("--forward", action="store_true", help="the evaluation forward instead of a training step")
    args = parser.parse_args(argv)
    what = "evaluation forward (folded, no_grad)" if args.forward else "training step"
    wall, totals = profile(args.model, args.batch, args.steps, args.forward)
    rows = sorted(totals.items(), key=lambda kv: -kv[1])
    inside = sum(totals.values())
    table = [[f"{cls}.{m}", f"{t * 1e3:.1f}", f"{100 * t / wall:.1f}%"] for (cls, m), t in rows if t > 1e-4]
    table.append(["other (optimizer, Python)", f"{(wall - inside) * 1e3:.1f}", f"{100 * (wall - inside) / wall:.1f}%"])
    print(f"{args.model}, batch {args.batch}: {wall * 1e3:.0f} ms per {what}; {vector_isa()}, "
          f"BLAS: {blas_line(blas_info())}")
    print(format_table(["function", "ms per step", "share"], table))
    if args.twin:
        twin_wall, ops = profile_twin(args.model, args.batch, args.steps, args.forward)
        print(f"\nbeside its PyTorch twin (torch.profiler, self time of aten ops): {wall * 1e3:.0f} vs "
              f"{twin_wall * 1e3:.0f} ms per {what}, {wall / twin_wall:.2f}x")
        ours = by_kind({f"{cls}.{m}": t for (cls, m), t in totals.items()}, wall)
        print(format_table(["kind", "ours ms", "PyTorch ms", "ratio"], twin_table(ours, by_kind(ops, twin_wall))))


if __name__ == "__main__":
    main()
