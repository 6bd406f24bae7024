"""Compile every ``.cu`` file for real GPUs on a machine without one, and report what ptxas says.

Two independent paths, because each catches what the other misses:

* CuPy's own NVRTC path with CuPy's own options (read from ``cupy._core.core.compile_with_cache``,
  plus the ``-ftz=true`` and ``--device-as-default-execution-space`` it adds) to a cubin for a pinned
  architecture: NVRTC rejects things nvcc accepts (``#include``, ``INFINITY``, ``std::``...). With no
  device to ask, the architecture is pinned by replacing CuPy's device query.
* ``nvcc -fatbin -Xptxas -v`` for sm_80 and sm_90: the reference toolchain; its ptxas report
  gives registers, shared memory, stack and spills per kernel.

Both compile what the launcher compiles: ``launch.source(file)``, common.cuh followed by the file.

``python -m minitorch_cnn.kernels.cuda.compile_check`` prints the table; tests/kernels/test_cuda_compile.py
asserts no spills, no stack frame and shared memory under 48 KB. Needs ``pip install cupy-cuda13x
nvidia-cuda-nvrtc`` and / or a CUDA toolkit's nvcc; what is missing is reported, not faked.
"""
import io
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .launch import HERE, source

FILES = sorted(p.stem for p in HERE.glob("*.cu"))
ARCHS = ("80", "90")
_ENTRY = re.compile(r"Compiling entry function '(\w+)' for 'sm_(\d+)'")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers(?:, used \d+ barriers)?(?:, (\d+) bytes smem)?")


def parse_ptxas(log):
    """ptxas -v output -> {(kernel, arch): {registers, smem, stack, spill_stores, spill_loads}}."""
    usage, key = {}, None
    for line in log.splitlines():
        if m := _ENTRY.search(line):
            key = (m.group(1), m.group(2))
            usage[key] = {"registers": 0, "smem": 0, "stack": 0, "spill_stores": 0, "spill_loads": 0}
        elif key and (m := _FRAME.search(line)):
            usage[key].update(stack=int(m.group(1)), spill_stores=int(m.group(2)), spill_loads=int(m.group(3)))
        elif key and (m := _USED.search(line)):
            usage[key].update(registers=int(m.group(1)), smem=int(m.group(2) or 0))
    return usage


def cupy_missing():
    """Why the NVRTC check cannot run here, or None."""
    try:
        from cupy.cuda import compiler
        compiler._get_nvrtc_version()
    except Exception as e:   # ImportError, or NVRTC's library not found
        return f"CuPy's NVRTC path is not available ({type(e).__name__}: {e}); pip install cupy-cuda13x " \
               f"nvidia-cuda-nvrtc"
    return None


def nvcc_missing():
    return None if shutil.which("nvcc") else "nvcc (a CUDA toolkit) is not on PATH"


def cupy_options():
    """The options CuPy's RawModule compiles with, captured from CuPy itself (no device needed)."""
    import cupy._core.core as core
    from cupy.cuda import compiler

    class Captured(Exception):
        pass

    seen = {}

    def capture(source, options=(), **_):
        seen["options"] = tuple(options)
        raise Captured

    original = compiler._compile_module_with_cache
    compiler._compile_module_with_cache = capture
    try:
        core.compile_with_cache("", (), None, False)   # what RawModule calls, with prepend_cupy_headers=False
    except Captured:
        pass
    finally:
        compiler._compile_module_with_cache = original
    return seen["options"] + ("-ftz=true",)   # added by compiler._compile_with_cache_cuda


def nvrtc_compile(file, arch):
    """Compile ``file``.cu through CuPy's NVRTC path to a cubin for sm_<arch>; return the ptxas usage."""
    return nvrtc_compile_source(source(file), arch, file)


def nvrtc_compile_source(source, arch, file="source"):
    """CUDA ``source`` through CuPy's NVRTC path to a cubin for sm_<arch> (raises CuPy's CompileException)."""
    from cupy.cuda import compiler
    original = compiler._get_arch_for_options_for_nvrtc
    compiler._get_arch_for_options_for_nvrtc = lambda arch=None: (f"-arch=sm_{arch}", "cubin")
    log = io.StringIO()
    try:
        cubin, _ = compiler.compile_using_nvrtc(source, cupy_options() + ("--ptxas-options=-v",), arch=arch,
                                                log_stream=log)
    finally:
        compiler._get_arch_for_options_for_nvrtc = original
    assert cubin[:4] == b"\x7fELF", f"{file}.cu: NVRTC did not produce a cubin"
    return parse_ptxas(log.getvalue())


def nvcc_compile(*files):
    """``nvcc -fatbin -Xptxas -v`` for every arch in ARCHS, the files compiled at once (one process
    each), each as the launcher's text (common.cuh + the file) written to a temporary .cu; returns
    {file: ptxas usage}."""
    gencode = [a for arch in ARCHS for a in ("-gencode", f"arch=compute_{arch},code=sm_{arch}")]
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            (Path(tmp) / f"{f}.cu").write_text(source(f))
        procs = {f: subprocess.Popen(["nvcc", "-fatbin", *gencode, "-Xptxas", "-v",
                                      str(Path(tmp) / f"{f}.cu"), "-o", str(Path(tmp) / f"{f}.fatbin")],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for f in files}
        logs = {f: p.communicate() for f, p in procs.items()}
    for f, p in procs.items():
        if p.returncode:
            raise RuntimeError(f"nvcc failed on {f}.cu:\n{logs[f][1]}")
    return {f: parse_ptxas(logs[f][1]) for f in files}


def main():
    print(f"{'kernel':<34}{'arch':>5}{'regs':>6}{'smem B':>8}{'stack':>7}{'spills':>8}   path")
    for file in FILES:
        results = []
        if not cupy_missing():
            results += [("nvrtc", u) for arch in ARCHS for u in [nvrtc_compile(file, arch)]]
        if not nvcc_missing():
            results.append(("nvcc", nvcc_compile(file)[file]))
        for path, usage in results:
            for (kernel, arch), u in sorted(usage.items()):
                print(f"{kernel:<34}{arch:>5}{u['registers']:>6}{u['smem']:>8}{u['stack']:>7}"
                      f"{u['spill_stores'] + u['spill_loads']:>8}   {path}")
    for reason in (cupy_missing(), nvcc_missing()):
        if reason:
            print("skipped:", reason)


if __name__ == "__main__":
    main()
