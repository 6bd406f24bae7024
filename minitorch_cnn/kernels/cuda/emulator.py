"""A host emulator for the CUDA kernels: the text CuPy compiles (``launch.source``: common.cuh and
a .cu file), compiled with g++, run on NumPy arrays.

There is no GPU on most machines that run the tests. This module lets them run the real GPU code
path anyway: the wrappers in this package, their launch configurations, and the kernels of every
``.cu`` file, unchanged. It offers the small part of CuPy's interface the wrappers use::

    module = RawModule(code=launch.source("conv"))   # g++ -O2 with emulator_shim.h; built once, cached
    kernel = module.get_function("im2col_f32")
    kernel((blocks,), (threads,), (x, cols, np.int32(n), ...))

How a launch runs is described in ``emulator_shim.h``: blocks one after another, the threads of a
block as a plain loop, or as fibers when the kernel reaches ``__syncthreads``; ``__shared__`` per block.
``Config.launch_order`` ("forward", or "reverse": ``with launch_order("reverse"):``) runs blocks and
threads in reverse order, so a result that depends on the order (a missing ``__syncthreads``, blocks
that race) shows up as a difference.

Arguments are checked against the kernel's C signature, which CuPy does not do: a pointer needs a
C-contiguous array of exactly the pointed-to dtype, a scalar a NumPy scalar of exactly its type
(``np.int32``, ``np.float32``, ...). A mismatch raises a TypeError naming the kernel and the argument.

What it does not model: memory coalescing, timing, warps (no warp intrinsics are used, by rule), out
of bounds accesses (they are ordinary host memory errors here), float rounding details of the GPU
(``-ftz``, fused multiply-add; g++ runs with ``-ffp-contract=off``). The compiled libraries live in
``$XDG_CACHE_HOME/minitorch_cnn/cuda-emulator`` (default ``~/.cache``), named by a hash of the
source, the shim and the compiler command; a build writes a temporary file and renames it, so
processes building at once never load a half-written library.
"""
import collections
import contextlib
import ctypes
import hashlib
import os
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ...config import Config, using_config

SHIM = Path(__file__).with_name("emulator_shim.h")
COMPILER = ["g++", "-O2", "-std=c++17", "-shared", "-fPIC", "-ffp-contract=off", "-fno-strict-aliasing",
            "-U_FORTIFY_SOURCE", "-D_FORTIFY_SOURCE=0", "-w"]
_SCALARS = {"float": np.float32, "double": np.float64, "int": np.int32, "unsigned int": np.uint32,
            "long long": np.int64, "unsigned long long": np.uint64, "bool": np.bool_, "char": np.int8,
            "unsigned char": np.uint8, "short": np.int16}
ORDERS = ("forward", "reverse")
# A sanitized build, chosen per process by MINITORCH_EMULATOR_SANITIZE (the library must then be loaded into a
# Python that has the sanitizer's runtime preloaded: tests/kernels/sanitized_cases.py shows how):
#   "address,undefined"  AddressSanitizer + UndefinedBehaviorSanitizer: an out-of-bounds read or write of an
#                        array, signed overflow, ... stops the process with a report
#   "thread"             ThreadSanitizer, with each CUDA thread of a block an OS thread and __syncthreads a
#                        barrier (emulator_threads.h): a race between the threads of a block is reported
SANITIZERS = {"": [], "address,undefined": ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"],
              "thread": ["-fsanitize=thread", "-DEMU_OS_THREADS", "-pthread"]}


def compiler():
    """The g++ command for this process's build (COMPILER, or its sanitized variant)."""
    mode = os.environ.get("MINITORCH_EMULATOR_SANITIZE", "")
    if mode not in SANITIZERS:
        raise ValueError(f"MINITORCH_EMULATOR_SANITIZE: expected one of {sorted(SANITIZERS)}, got {mode!r}")
    if not mode:
        return COMPILER
    return [f for f in COMPILER if f != "-O2"] + ["-O1", "-g", "-fno-omit-frame-pointer"] + SANITIZERS[mode]
launches = collections.Counter()   # kernel name -> launches in this process (tests read it)
# Before each launch every array a kernel may write (a non-const pointer) is filled with garbage: NaN for
# floats, the most negative int, True. A GPU's fresh allocation holds whatever was there; NumPy's often
# holds zeros, which would hide an output element a kernel forgot to write. Off only to measure speed.
# Pointers named *_inout are read before they are written (in-place updates): they keep their values.
poison_outputs = True


@contextlib.contextmanager
def launch_order(order):
    """Run every launch inside the block with blocks and threads in 'forward' or 'reverse' order:
    ``using_config("launch_order", order)``, with the order checked first."""
    if order not in ORDERS:
        raise ValueError(f"launch_order: expected 'forward' or 'reverse', got {order!r}")
    with using_config("launch_order", order):
        yield


def unavailable_reason():
    """Why the emulator cannot run here (no g++), or None."""
    import shutil
    return None if shutil.which("g++") else "the CUDA emulator needs g++ (apt-get install g++), not found on PATH"


def available():
    return unavailable_reason() is None


def cache_dir():
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "minitorch_cnn" / "cuda-emulator"


class Param:
    """One kernel parameter: its name, the C type as written, and the NumPy dtype it takes."""
    def __init__(self, text):
        words = text.replace("*", " * ").replace("__restrict__", " ").split()
        self.name = words[-1]
        self.pointer = "*" in words
        base = " ".join(w for w in words[:-1] if w not in ("const", "*"))
        if base not in _SCALARS:
            raise TypeError(f"cuda emulator: parameter type {text!r} is not supported")
        self.dtype = np.dtype(_SCALARS[base])
        self.c_type = " ".join(w for w in words[:-1])


def _preprocess(code):
    """The source with its macros expanded (g++ -E), so the stamped-out kernels can be read."""
    done = subprocess.run(["g++", "-E", "-P", "-x", "c++", "-"], input=code, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"cuda emulator: preprocessing failed:\n{done.stderr}")
    return done.stdout


def _body(text, start):
    """The brace-balanced body that begins at the first '{' after ``start``."""
    i = text.index("{", start)
    depth = 0
    for k in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[k], 0)
        if depth == 0:
            return text[i:k + 1]
    raise RuntimeError("cuda emulator: unbalanced braces in the source")


def parse_kernels(code):
    """name -> (params, uses_sync) for every ``extern "C" __global__`` kernel in the source.

    uses_sync: the kernel's body calls ``__syncthreads``, directly or through a function of the file
    that does; such kernels run their threads as fibers. (A miss is not silent: ``__syncthreads``
    reached in loop mode raises.)
    """
    text = _preprocess(code)
    syncing = {m.group(1) for m in re.finditer(r"(\w+)\s*\([^;{)]*\)\s*\{", text)
               if m.group(1) not in ("if", "for", "while", "switch") and "__syncthreads" in _body(text, m.start())}
    kernels = {}
    for m in re.finditer(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)', text):
        body = _body(text, m.end())
        params = [Param(p) for p in m.group(2).split(",") if p.strip()]
        uses_sync = "__syncthreads" in body or any(re.search(rf"\b{f}\s*\(", body) for f in syncing)
        kernels[m.group(1)] = (params, uses_sync)
    return kernels


def _launcher(name, params):
    unpack = ", ".join(f"*({p.c_type}*)args[{i}]" for i, p in enumerate(params))
    return (f'static void emu_body_{name}(void** args) {{ {name}({unpack}); }}\n'
            f'extern "C" int emu_launch_{name}(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, '
            f'unsigned bz, void** args, int reverse, int fibers, char* err, int err_len) {{\n'
            f'    return emu_run(emu_body_{name}, gx, gy, gz, bx, by, bz, args, reverse, fibers, err, err_len);\n}}\n')


def build(code, kernels):
    """Compile ``code`` with the shim into a shared library (once per source); return its path."""
    shim = SHIM.read_text() + SHIM.with_name("emulator_threads.h").read_text()
    command = compiler()
    key = hashlib.sha256("\0".join([shim, code, " ".join(command)]).encode()).hexdigest()[:24]
    directory = cache_dir()
    target = directory / f"{key}.so"
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    launchers = "".join(_launcher(name, params) for name, (params, _) in kernels.items())
    unit = f'#include "{SHIM}"\n#line 1 "kernel.cu"\n{code}\n{launchers}'
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=directory)
    os.close(fd)
    try:
        done = subprocess.run(command + ["-x", "c++", "-", "-o", tmp], input=unit, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"cuda emulator: g++ failed to compile the kernels:\n{done.stderr}")
        os.replace(tmp, target)   # atomic: another process sees the old state or the whole library
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


class RawModule:
    """``cupy.RawModule(code=...)`` for the emulator: the source compiled for the host."""
    def __init__(self, code, options=(), **_ignored):
        if not available():
            raise RuntimeError(f"device 'cuda-emulator': {unavailable_reason()}")
        self.code = code
        self._kernels = parse_kernels(code)
        self._lib = ctypes.CDLL(str(build(code, self._kernels)))
        self._functions = {}

    def get_function(self, name):
        if name not in self._kernels:
            raise AttributeError(f"cuda emulator: no kernel {name!r} in the module "
                                 f"(it has {sorted(self._kernels)})")
        if name not in self._functions:
            params, uses_sync = self._kernels[name]
            self._functions[name] = RawKernel(name, params, uses_sync, getattr(self._lib, f"emu_launch_{name}"))
        return self._functions[name]


def _dims(value, what, name):
    dims = tuple(int(v) for v in (value if isinstance(value, tuple | list) else (value,)))
    if not 1 <= len(dims) <= 3 or min(dims) < 1:
        raise ValueError(f"{name}: {what} must be 1 to 3 positive sizes, got {value!r}")
    return dims + (1,) * (3 - len(dims))


def _poison(params, args):
    """Fill the arrays the kernel may write (non-const pointers) with values no kernel writes by accident.
    A pointer named ``*_inout`` (an optimizer's parameters and state, updated in place) is read first: kept."""
    for p, a in zip(params, args):
        if p.pointer and "const" not in p.c_type.split() and not p.name.endswith("_inout"):
            kind = a.dtype.kind
            a.fill(np.nan if kind == "f" else np.iinfo(a.dtype).min if kind in "iu" else True)


class RawKernel:
    """One kernel; call it as ``kernel(grid, block, args)`` like a ``cupy.RawKernel``."""
    def __init__(self, name, params, uses_sync, launch):
        self.name, self.params, self.uses_sync, self._launch = name, params, uses_sync, launch
        launch.restype = ctypes.c_int
        launch.argtypes = [ctypes.c_uint] * 6 + [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                                  ctypes.c_int]

    def _marshal(self, args):
        if len(args) != len(self.params):
            raise TypeError(f"{self.name}: expected {len(self.params)} arguments "
                            f"({', '.join(p.name for p in self.params)}), got {len(args)}")
        slots = []
        for i, (p, a) in enumerate(zip(self.params, args)):
            where = f"{self.name}: argument {i} ({p.c_type} {p.name})"
            if p.pointer:
                if not isinstance(a, np.ndarray):
                    raise TypeError(f"{where} expects a NumPy array of {p.dtype}, got {type(a).__name__}")
                if a.dtype != p.dtype or not a.flags.c_contiguous:
                    raise TypeError(f"{where} expects a C-contiguous {p.dtype} array, got "
                                    f"{a.dtype}{'' if a.flags.c_contiguous else ' (not contiguous)'}")
                if "const" not in p.c_type.split() and not a.flags.writeable:
                    raise TypeError(f"{where} writes into a read-only array")
                slots.append(ctypes.c_void_p(a.ctypes.data))
            else:
                if not isinstance(a, np.generic) or a.dtype != p.dtype:
                    got = f"{type(a).__name__} {getattr(a, 'dtype', '')}".strip()
                    raise TypeError(f"{where} expects a NumPy {p.dtype} scalar (np.{p.dtype.name}(...)), got {got}")
                slots.append(np.array(a, dtype=p.dtype))   # owns the bytes the kernel reads
        return slots

    def __call__(self, grid, block, args, shared_mem=0):
        grid, block = _dims(grid, "grid", self.name), _dims(block, "block", self.name)
        slots = self._marshal(tuple(args))
        if poison_outputs:
            _poison(self.params, args)
        # like CUDA's kernelParams: entry i points at the bytes of argument i (for an array, at its pointer)
        addresses = (ctypes.c_void_p * max(1, len(slots)))(
            *[ctypes.addressof(s) if isinstance(s, ctypes.c_void_p) else s.ctypes.data for s in slots])
        if Config.launch_order not in ORDERS:   # set without launch_order()'s check
            raise ValueError(f"cuda emulator: Config.launch_order must be 'forward' or 'reverse', "
                             f"got {Config.launch_order!r}")
        launches[self.name] += 1
        error = ctypes.create_string_buffer(512)
        reverse = int(Config.launch_order == "reverse")
        rc = self._launch(*grid, *block, addresses, reverse, int(self.uses_sync), error, 512)
        if rc:
            raise RuntimeError(f"cuda emulator: kernel {self.name} failed: {error.value.decode()}")
