"""Where a training step's time goes: seconds per Function (forward and backward), for one zoo model.

    python -m benchmarks.profile resnet18 [--batch 64] [--steps 2]

Every Function subclass's ``forward`` and ``backward`` is wrapped with a timer
for the duration of the run (the library itself is not changed), then one
warm-up step and ``--steps`` timed steps run. Prints a table sorted by total time;
what is not inside any Function (the optimizer, Python overhead) is listed as "other".
"""
import argparse
import collections
import time

import zoo
from minitorch_cnn.autograd import Function

from .harness import blas_info, blas_line, format_table, run_on_own_blas_kernel
from .models import _ours as training_step


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


def profile(name, batch, steps):
    step, _ = training_step(name, batch)
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


def main(argv=None):
    if run_on_own_blas_kernel("benchmarks.profile", argv):
        return None
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=list(zoo.MODELS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args(argv)
    wall, totals = profile(args.model, args.batch, args.steps)
    rows = sorted(totals.items(), key=lambda kv: -kv[1])
    inside = sum(totals.values())
    table = [[f"{cls}.{m}", f"{t * 1e3:.1f}", f"{100 * t / wall:.1f}%"] for (cls, m), t in rows if t > 1e-4]
    table.append(["other (optimizer, Python)", f"{(wall - inside) * 1e3:.1f}", f"{100 * (wall - inside) / wall:.1f}%"])
    print(f"{args.model}, batch {args.batch}: {wall * 1e3:.0f} ms per training step; BLAS: {blas_line(blas_info())}")
    print(format_table(["function", "ms per step", "share"], table))


if __name__ == "__main__":
    main()
