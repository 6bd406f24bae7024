"""Timing on a shared machine: warm-up, medians, and a guard against other processes.

The guard reads the whole machine's busy CPU time (/proc/stat) and this process's
own CPU time around each timing block. What is left is other processes' work; a
block where it exceeds ``MAX_OTHERS`` of the machine is thrown away and run again
(up to ``RETRIES`` times). Every result carries the guard's readings, so a reader
can see how quiet the machine was.
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from minitorch_cnn._openblas import THREAD_TIMEOUT
from minitorch_cnn.files import atomic_write, atomic_write_text

# Variables some workplaces set to pin OpenBLAS to an older kernel (e.g. Haswell's AVX2 on AVX-512 cores):
# measured on such a machine they cost NumPy's sgemm almost half its speed, which no user would see.
# Benchmarks run their timed code in a child process with these removed; tests and CI keep them.
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_CHILD_MARK = "MINITORCH_BENCH_CLEAN_BLAS"

# ``--isa avx2``: the AVX2 half of the comparison, measured on an AVX-512 machine. Every library in the timed
# processes is capped at AVX2 by its own switch: OpenBLAS's kernel, the CPU Numba's LLVM compiles for (no
# features beyond Haswell's), PyTorch's ATen kernels, oneDNN (its convolutions) and MKL (its BLAS). The cores,
# caches and memory stay this machine's, so the cap measures the instruction set, not an AVX2 machine's
# clock or cache sizes; the results record the cap beside the CPU's own ISA.
ISA_CAPS = {"avx2": {"OPENBLAS_CORETYPE": "Haswell", "NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": "",
                     "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}}
ISA_NAMES = {"avx2": "AVX2"}
_ISA_MARK = "MINITORCH_BENCH_ISA_CAP"

MAX_OTHERS = 0.10
RETRIES = 6
CPUS = os.cpu_count() or 1
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _busy_seconds():
    """All CPUs' non-idle time since boot, in seconds (None where /proc/stat does not exist)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / TICK


def _own_seconds():
    t = os.times()
    return t.user + t.system


def clean_blas_env(isa=None):
    """This process's environment without the BLAS overrides, for a benchmark's child process; with the
    switches of ``ISA_CAPS[isa]`` when ``isa`` is given or this process already runs capped."""
    isa = isa or os.environ.get(_ISA_MARK)
    env = {k: v for k, v in os.environ.items() if k not in BLAS_OVERRIDES}
    # what `import minitorch_cnn` before NumPy sets for a user (minitorch_cnn/_openblas.py); this module
    # imported NumPy first, and the children do too
    env.setdefault("OPENBLAS_THREAD_TIMEOUT", THREAD_TIMEOUT)
    dropped = [f"{k}={os.environ[k]}" for k in BLAS_OVERRIDES if k in os.environ]
    env[_CHILD_MARK] = os.environ.get(_CHILD_MARK) or ",".join(dropped) or "none set"
    if isa:
        env.update(ISA_CAPS[isa], **{_ISA_MARK: isa})
    return env


def run_on_own_blas_kernel(module, argv, isa=None):
    """Re-run ``python -m module argv`` in a child process without the BLAS overrides (and capped at ``isa``,
    a key of ``ISA_CAPS``, when given), unless this is it.

    Returns True when the child ran (the caller then stops; a failing child's exit status is raised as
    SystemExit), False when this process is already clean and should do the work itself. NumPy has
    loaded OpenBLAS by now, so the overrides cannot be undone here: only a fresh process picks the
    machine's own kernel.
    """
    if os.environ.get(_CHILD_MARK) or not (isa or any(k in os.environ for k in BLAS_OVERRIDES)):
        return False
    env = clean_blas_env(isa)
    print(f"(timing in a child process without {env[_CHILD_MARK]}: the machine's own BLAS kernel"
          + (f", every library capped at {ISA_NAMES[isa]})" if isa else ")"), flush=True)
    argv = list(sys.argv[1:] if argv is None else argv)
    status = subprocess.run([sys.executable, "-m", module, *argv], env=env).returncode
    if status:
        raise SystemExit(status)
    return True


def blas_info():
    """The BLAS libraries loaded in this process and the kernel each uses (threadpoolctl), or a note why not."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl not installed (pip install .[benchmarks])"}]
    keys = ("internal_api", "architecture", "version", "num_threads", "threading_layer")
    return [{k: lib.get(k) for k in keys} for lib in threadpool_info() if lib.get("user_api") == "blas"]


def vector_isa():
    """The widest x86 vector instruction set this CPU offers ("AVX-512", "AVX2", "AVX", "SSE"), or the machine's
    architecture elsewhere: what Numba's kernels and the BLAS kernel may use (OpenBLAS picks its kernel from it)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []))
    except OSError:
        flags = set()
    for isa, flag in (("AVX-512", "avx512f"), ("AVX2", "avx2"), ("AVX", "avx"), ("SSE", "sse2")):
        if flag in flags:
            return isa
    return platform.machine() or "unknown"


def llvm_cpu():
    """The CPU that Numba's LLVM compiles the kernels for (e.g. "skylake-avx512", "znver4"), or None:
    NUMBA_CPU_NAME's when set (``--isa avx2`` sets "haswell"), else the host's."""
    try:
        from llvmlite import binding
        from numba.core import config
        return config.CPU_NAME or binding.get_host_cpu_name()
    except (ImportError, RuntimeError):
        return None


def effective_isa():
    """The vector ISA the timed code may use: the CPU's (``vector_isa``), or the cap of ``--isa`` with the
    CPU's own beside it, e.g. "AVX2 (capped; CPU AVX-512)"."""
    cap = os.environ.get(_ISA_MARK)
    return f"{ISA_NAMES[cap]} (capped; CPU {vector_isa()})" if cap else vector_isa()


def machine_label(info):
    """Which kind of machine a result ran on, short enough for a table cell: 'AVX-512, SkylakeX'."""
    kernels = [b.get("architecture") for b in info.get("blas", []) if b.get("architecture")]
    return f"{info.get('vector_isa', 'ISA not recorded')}, {'/'.join(kernels) or 'BLAS kernel not recorded'}"


def blas_line(info):
    """One printable line: 'openblas 0.3.31 SkylakeX kernel, 2 threads'."""
    return "; ".join(f"{b['internal_api']} {b.get('version', '')} {b.get('architecture')} kernel, "
                     f"{b.get('num_threads')} threads" if "internal_api" in b else b["note"] for b in info) or "no BLAS"


def timed_block(fn, calls):
    """Run ``fn`` ``calls`` times; return (per-call seconds, share of the machine other processes used)."""
    busy0, own0, t0 = _busy_seconds(), _own_seconds(), time.perf_counter()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    wall = time.perf_counter() - t0
    busy1, own1 = _busy_seconds(), _own_seconds()
    if busy0 is None:
        return times, 0.0
    others = max(0.0, (busy1 - busy0) - (own1 - own0))
    return times, others / (wall * CPUS)


def measure(fn, repeats=5, warmup=2, block=None):
    """Median seconds per call of ``fn``, after ``warmup`` calls, in guarded blocks.

    Returns a dict: median, min, the first call's time (compile and first-touch
    costs show up there), the guard's worst accepted reading and how many blocks
    it rejected.
    """
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    for _ in range(max(0, warmup - 1)):
        fn()
    block = block or max(1, min(repeats, 3))
    kept, worst_ok, rejected = [], 0.0, 0
    while len(kept) < repeats:
        for attempt in range(RETRIES + 1):
            times, others = timed_block(fn, block)
            if others <= MAX_OTHERS or attempt == RETRIES:
                break
            rejected += 1
        kept += times
        worst_ok = max(worst_ok, others)
    return {"median_s": statistics.median(kept), "min_s": min(kept), "first_call_s": first,
            "guard_others_max": round(worst_ok, 3), "guard_rejected_blocks": rejected, "calls": len(kept)}


def matmul_gflops(n=2048, dtype=np.float32):
    """This machine's float32 matrix-multiply throughput through NumPy's BLAS (large square matrices)."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
    b = a.copy()
    result = measure(lambda: a @ b, repeats=3, warmup=1)
    return 2 * n ** 3 / result["median_s"] / 1e9


def machine_info():
    info = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.machine(), "cpus": CPUS,
            "python": platform.python_version(), "numpy": np.__version__}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    try:
        import numba

        from minitorch_cnn.kernels.cpu import jit  # picks the threading layer our kernels run on
        info["numba"], info["numba_threading_layer"] = numba.__version__, jit.numba.config.THREADING_LAYER
    except ImportError:
        pass
    torch = optional_torch()
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()   # ATen's kernels: AVX512, AVX2
    info["blas"] = blas_info()
    info["vector_isa"], info["llvm_cpu"] = effective_isa(), llvm_cpu()
    info["isa_cap"] = os.environ.get(_ISA_MARK)   # None: uncapped
    info["blas_overrides_removed"] = os.environ.get(_CHILD_MARK, "none set")
    info["blas_overrides_active"] = [k for k in BLAS_OVERRIDES if k in os.environ]   # [] when measured clean
    return info


def optional_torch():
    """PyTorch when installed (the comparison), else None (our numbers only)."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(CPUS)
    return torch


def format_table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(f"{h:>{w}}" for h, w in zip(headers, widths))
    out = [line, "-" * len(line)]
    out += ["  ".join(f"{str(c):>{w}}" for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def save(results, out_dir, name, chart):
    """Write ``name``.json and, if matplotlib is there, ``name``.png (``chart(plt, results)`` draws it)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    atomic_write_text(path, json.dumps(results, indent=2))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [path]
    fig = chart(plt, results)
    png = out_dir / f"{name}.png"
    atomic_write(png, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return [path, png]


def ratio_chart(plt, labels, ours, theirs, title, ylabel="ms (median)"):
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(labels)), 4))
    x = np.arange(len(labels))
    ax.bar(x - 0.2, ours, 0.4, label="minitorch_cnn")
    if any(t is not None for t in theirs):
        ax.bar(x + 0.2, [t or 0 for t in theirs], 0.4, label="PyTorch")
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend()
    return fig
