"""Where a run's numbers came from: the code, the arithmetic and the data, as one JSON-able dict.

    record = provenance(device="cpu", data_files=[Path("~/.cache/.../train-images-idx3-ubyte.gz"), ...])
    describe(record)   # 'commit 1a2b3c4 (dirty), OpenBLAS 0.3.31 SkylakeX, AVX-512, 2+2 threads'

The same recipe and seed reproduce bitwise only with the same source tree AND the same BLAS kernel: OpenBLAS
picks its kernel (Haswell, SkylakeX, ...) from the CPU at load time, and a different kernel sums in another
order, which moves intermediate test errors by several points over a few hundred steps. So every invocation
of ``zoo.train`` records (``Run.write_config``: config.json and the checkpoint's ``invocations``):

    git        the commit of the source tree and whether its source (SOURCE_PATHS) was dirty (None +
               ``reason`` for an installed copy or a machine without git)
    blas       each BLAS library threadpoolctl finds: library, version, kernel ("architecture"), threads
    cpu        the CPU model and its widest vector ISA (AVX-512, AVX2, ... from /proc/cpuinfo's flags)
    threads    BLAS threads, Numba threads, os.cpu_count() and the thread-related environment variables set
    versions   python, numpy, numba, threadpoolctl, minitorch_cnn (and cupy when it is loaded)
    device     the device the run computed on
    data       sha256 and size of every dataset file the run read (hashed once per process and file)
"""
import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

import minitorch_cnn as mt

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
              "OPENBLAS_CORETYPE")
# /proc/cpuinfo flag -> the vector ISA it names, widest first.
ISA_FLAGS = (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse4_2", "SSE4.2"),
             ("asimd", "NEON"), ("neon", "NEON"))
SOURCE = Path(__file__).resolve().parents[2]   # the folder holding zoo/ (and minitorch_cnn/ in a checkout)
SOURCE_PATHS = ("minitorch_cnn", "zoo", "pyproject.toml")   # what a run executes: "dirty" means one changed


def provenance(device="cpu", data_files=()):
    """The provenance record of this process: a dict of plain JSON values (see the module docstring)."""
    return {"git": git_state(SOURCE, tracked="zoo/__init__.py", paths=SOURCE_PATHS), "blas": blas_libraries(),
            "cpu": cpu_info(),
            "threads": thread_counts(), "versions": versions(), "device": str(device),
            "data": [file_record(p) for p in data_files]}


# ----------------------------------------------------------------------------- the source tree

def _git(folder, *args):
    """``git -C folder args``: its stdout; CalledProcessError/OSError/TimeoutExpired as git gives."""
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=20,
                          check=True)
    return done.stdout


def git_state(folder, tracked=".", paths=(".",)):
    """{"commit", "dirty", "changed" (up to 20 changed paths), "root"}; only changes under ``paths`` (relative
    to ``folder``) count. {"commit": None, "reason"} when ``folder`` is not part of a git checkout (a
    pip-installed package), its file ``tracked`` is not in the repository (a package installed into a venv
    inside some checkout), or git is not there."""
    folder = Path(folder)
    try:
        root = _git(folder, "rev-parse", "--show-toplevel").strip()
        # A package installed inside some repository (a venv in a checkout) is not that repository's source.
        if not _git(folder, "ls-files", "--", tracked).strip():
            return {"commit": None, "reason": f"{folder} is not tracked by the git repository at {root} "
                                              "(an installed copy)"}
        commit = _git(folder, "rev-parse", "HEAD").strip()
        # Only the source counts: a run's own outputs (docs/results/...) or an edited test change no result.
        changed = _git(folder, "status", "--porcelain", "--untracked-files=all", "--", *paths).splitlines()
    except FileNotFoundError:
        return {"commit": None, "reason": "git is not installed"}
    except subprocess.TimeoutExpired:
        return {"commit": None, "reason": "git did not answer within 20 s"}
    except (subprocess.CalledProcessError, OSError) as err:
        message = (getattr(err, "stderr", "") or str(err)).strip().splitlines()
        return {"commit": None, "reason": f"{folder} is not a git checkout ({message[0] if message else err})"}
    return {"commit": commit, "dirty": bool(changed), "changed": [line[3:] for line in changed[:20]],
            "root": root}


# ----------------------------------------------------------------------------- the arithmetic

def blas_libraries():
    """Every BLAS library loaded in this process: library, version, kernel, threads, threading layer."""
    from threadpoolctl import threadpool_info
    return [{"library": info.get("internal_api"), "version": info.get("version"),
             "kernel": info.get("architecture"), "threads": info.get("num_threads"),
             "threading_layer": info.get("threading_layer"), "file": Path(info.get("filepath", "")).name}
            for info in threadpool_info() if info.get("user_api") == "blas"]


def _cpuinfo():
    """/proc/cpuinfo's first processor as {key: value}; {} where there is none (macOS, Windows)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    fields = {}
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_info():
    """{"model", "isa", "machine"}: the ISA is the widest of ISA_FLAGS the CPU reports (None if unknown)."""
    fields = _cpuinfo()
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    isa = next((name for flag, name in ISA_FLAGS if flag in flags), None)
    model = fields.get("model name") or fields.get("Model") or platform.processor() or None
    return {"model": model, "isa": isa, "machine": platform.machine()}


def thread_counts():
    """BLAS and Numba threads, the cores this process may use, and the thread variables of the environment."""
    try:
        import numba
        numba_threads = numba.get_num_threads()
    except ImportError:
        numba_threads = None
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"blas": [lib["threads"] for lib in blas_libraries()], "numba": numba_threads,
            "cpu_count": os.cpu_count(), "usable_cpus": usable,
            "env": {name: os.environ[name] for name in THREAD_ENV if name in os.environ}}


def versions():
    """The versions of Python and of the packages the numbers depend on (cupy only when loaded)."""
    import threadpoolctl
    found = {"python": sys.version.split()[0], "numpy": np.__version__, "minitorch_cnn": mt.__version__,
             "threadpoolctl": threadpoolctl.__version__}
    try:
        import numba
        found["numba"] = numba.__version__
    except ImportError:
        found["numba"] = None
    if "cupy" in sys.modules:
        found["cupy"] = getattr(sys.modules["cupy"], "__version__", None)
    return found


# ----------------------------------------------------------------------------- the data

_HASHED = {}   # (path, size, mtime_ns) -> sha256: each file is read once per process


def file_record(path):
    """{"file", "bytes", "sha256"} of one data file (MNIST's 12 MB take ~0.05 s, CIFAR-10's 170 MB ~0.5 s)."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHED:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _HASHED[key] = digest.hexdigest()
    return {"file": str(path), "bytes": stat.st_size, "sha256": _HASHED[key]}


def dataset_files(dataset, split, data_dir=None):
    """The files ``load_dataset(dataset, split, data_dir)`` reads (the same search, in the same order);
    [] if they are not found (load_dataset then has already said why)."""
    from minitorch_cnn.data.datasets import SYSTEM_ROOTS, candidate_folders, data_roots, locate
    from minitorch_cnn.data.registry import get_info
    info = get_info(dataset)
    roots = data_roots(data_dir) + list(SYSTEM_ROOTS.get(info.name, ()))
    found = locate(info, split, candidate_folders(info, roots))
    return [] if found is None else list(found[1])


# ----------------------------------------------------------------------------- reading it back

def blas_kernel(record):
    """'OpenBLAS 0.3.31 SkylakeX' for the first BLAS library of ``record`` ('unknown BLAS' if none)."""
    libs = record.get("blas") or []
    if not libs:
        return "unknown BLAS"
    lib = libs[0]
    name = {"openblas": "OpenBLAS", "mkl": "MKL", "blis": "BLIS"}.get(lib.get("library"), lib.get("library"))
    return " ".join(str(part) for part in (name, lib.get("version"), lib.get("kernel")) if part)


def short_commit(record):
    """'1a2b3c4', '1a2b3c4+dirty' or 'no git' for ``record``'s source tree."""
    git = record.get("git") or {}
    if not git.get("commit"):
        return "no git"
    return git["commit"][:7] + ("+dirty" if git.get("dirty") else "")


def describe(record):
    """One line: the commit, the BLAS kernel, the ISA and the threads of a provenance ``record``."""
    if not record:
        return "not recorded (a run from before provenance was recorded)"
    threads = record.get("threads") or {}
    blas_threads = "/".join(str(t) for t in threads.get("blas") or []) or "?"
    return (f"commit {short_commit(record)}, {blas_kernel(record)}, {(record.get('cpu') or {}).get('isa') or '?'}, "
            f"{blas_threads} BLAS + {threads.get('numba', '?')} Numba threads, {record.get('device', '?')}")


def invocation_lines(invocations):
    """One line per invocation of a run: when it started, from where, and its provenance."""
    return [f"{inv.get('started', '?')} from epoch {inv.get('from_epoch', 0)}: {describe(inv.get('provenance'))}"
            for inv in invocations]
