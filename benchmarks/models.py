"""Per-model benchmark: forward and training-step time, images/second and peak memory, beside PyTorch.

    python -m benchmarks.models [--quick] [--batch 64] [--models resnet18,lenet5] [--out benchmarks/results]

A training step is forward, cross-entropy loss, backward and an SGD step
(momentum 0.9, weight decay 5e-4) on a random batch of 32x32 images. Each
(framework, model) pair runs in its own process, so that the peak resident
memory of its training step is its own: the peak resident set during the timed
steps minus the resident set before the first step (the peak is reset after one
untimed step, so Numba's one-time compilation does not count). The PyTorch twins come from tests/support/torch_twins.py.
The forward is inference as evaluation runs it: eval mode, no_grad, and ours with batch norm folded into
the convolutions (``nn.fold_batch_norm``, folded once before timing, as an inference engine folds at load).
"""
import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np

from .gpu import gpu_section, model_rows
from .harness import (
    ISA_CAPS,
    blas_info,
    blas_line,
    clean_blas_env,
    format_table,
    machine_info,
    measure,
    optional_torch,
    ratio_chart,
    run_on_own_blas_kernel,
    save,
)

ROOT = Path(__file__).resolve().parents[1]


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _reset_peak():
    """Forget the peak so far (Numba's compiler, imports): Linux resets VmHWM on writing 5 to clear_refs."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_bytes():
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _ours(name, batch):
    import minitorch_cnn as mt
    import zoo
    model = zoo.get_model(name)
    loss_fn = zoo.MODELS[name].loss(zoo.MODELS[name].recipe)   # GoogLeNet: main + 0.3 x auxiliaries
    opt = mt.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = mt.Tensor(np.random.default_rng(0).standard_normal((batch, 3, 32, 32)).astype(np.float32))
    y = np.random.default_rng(1).integers(0, 10, batch)
    fusion = []

    def step():
        if not fusion:   # each batch norm -> ReLU pair as one Function (nn/fuse.py), found in the first step as
            # zoo.run's loop finds it on its first batch: untimed, and its memory counts as that step's (the
            # traced forward's arrays stay in the process's heap, so tracing before the memory baseline would
            # hide them from the step's peak)
            fusion.append(mt.nn.fuse_batch_norm_activation(model, x))
        model.train()
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    folding = []

    def forward():   # as evaluation runs it: eval mode, no_grad, batch norm folded into the convs
        model.eval()
        if not folding:   # folded once, as an inference engine does at load (nn/fold.py); not timed after
            folding.append(mt.nn.fold_batch_norm(model, x))
        with mt.no_grad():
            model(x)
    return step, forward


def _theirs(name, batch):
    torch = optional_torch()
    sys.path.insert(0, str(ROOT / "tests"))
    from support.torch_twins import TWINS
    model = TWINS[name]()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))
    tf = torch.nn.functional

    def step():
        model.train()
        opt.zero_grad()
        out = model(x)
        if isinstance(out, tuple):
            loss = tf.cross_entropy(out[0], y) + 0.3 * (tf.cross_entropy(out[1], y) + tf.cross_entropy(out[2], y))
        else:
            loss = tf.cross_entropy(out, y)
        loss.backward()
        opt.step()

    def forward():
        model.eval()
        with torch.no_grad():
            model(x)
    return step, forward


def child(framework, name, batch, repeats):
    """Runs in a fresh process: measure one model in one framework, print one JSON line."""
    step, forward = (_ours if framework == "ours" else _theirs)(name, batch)
    before = _rss_bytes()   # model, optimizer and batch exist; no step has run
    step()   # compiles kernels (their memory would count otherwise) and fills the optimizer state
    _reset_peak()
    train = measure(step, repeats, warmup=1, block=1)
    peak = _peak_bytes() - before   # includes what the first step allocated and kept (workspaces, caches)
    fwd = measure(forward, repeats, warmup=1, block=1)
    print(json.dumps({"train": train, "forward": fwd, "peak_step_bytes": peak, "blas": blas_info()}))


def run_child(framework, name, batch, repeats):
    cmd = [sys.executable, "-m", "benchmarks.models", "--child", framework, name, str(batch), str(repeats)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=clean_blas_env())
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows, batch):
    headers = ["model", "train ms", "torch", "ratio", "img/s", "fwd ms", "torch", "ratio", "peak MB", "torch",
               "ratio", "guard max"]
    out = []
    for r in rows:
        o, t = r["ours"], r.get("torch") or {}
        if "error" in o:
            out.append([r["model"], "error: " + o["error"]] + [""] * (len(headers) - 2))
            continue
        ms = lambda d, k: d[k]["median_s"] * 1e3 if d and k in d else None  # noqa: E731
        cells = [r["model"]]
        for k in ("train", "forward"):
            a, b = ms(o, k), ms(t, k)
            cells += [f"{a:.0f}", f"{b:.0f}" if b else "-", f"{a / b:.2f}x" if b else "-"]
            if k == "train":
                cells.append(f"{batch / (a / 1e3):.0f}")
        a, b = o["peak_step_bytes"] / 2 ** 20, (t.get("peak_step_bytes") or 0) / 2 ** 20
        cells += [f"{a:.0f}", f"{b:.0f}" if b else "-", f"{a / b:.2f}x" if b else "-"]
        guards = [d[k]["guard_others_max"] for d in (o, t) if d for k in ("train", "forward") if k in d]
        cells.append(f"{max(guards):.0%}")
        out.append(cells)
    return format_table(headers, out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 16, 2 repeats")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--models", help="comma-separated zoo names (default: every model of zoo.MODELS)")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--isa", choices=sorted(ISA_CAPS), help="cap every library at this vector ISA (the "
                        "AVX2 half of a comparison on an AVX-512 machine; harness.ISA_CAPS lists the switches)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if run_on_own_blas_kernel("benchmarks.models", argv, isa=args.isa):
        return None
    if args.child:
        framework, name, batch, repeats = args.child
        return child(framework, name, int(batch), int(repeats))
    batch, repeats = args.batch or (16 if args.quick else 64), args.repeats or (2 if args.quick else 5)
    have_torch = optional_torch() is not None
    info = machine_info()
    import zoo
    names = args.models.split(",") if args.models else list(zoo.MODELS)
    rows = []
    for name in names:
        row = {"model": name, "ours": run_child("ours", name, batch, repeats)}
        if have_torch:
            row["torch"] = run_child("torch", name, batch, repeats)
        rows.append(row)
        print(f"  measured {name}", flush=True)
    print(f"batch {batch}; {info.get('cpu', '')} x{info['cpus']}, {info['vector_isa']} ({info['llvm_cpu']}); "
          f"BLAS: {blas_line(info['blas'])}")
    print(table(rows, batch))
    gpu_section(f"GPU training step, batch {batch}", lambda: model_rows(names, batch, repeats),
                ["model", "step ms", "torch cuda step ms"])
    ok = [r for r in rows if "error" not in r["ours"]]
    chart = lambda plt, res: ratio_chart(  # noqa: E731
        plt, [r["model"] for r in ok], [r["ours"]["train"]["median_s"] * 1e3 for r in ok],
        [r["torch"]["train"]["median_s"] * 1e3 if r.get("torch") and "train" in r["torch"] else None for r in ok],
        f"training step, batch {batch}")
    for path in save({"machine": info, "batch": batch, "rows": rows}, args.out, "models", chart):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
