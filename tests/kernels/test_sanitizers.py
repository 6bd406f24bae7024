"""The CUDA kernels under sanitizers, on the host emulator (tests/kernels/sanitized_cases.py, in a subprocess with
the sanitizer's runtime preloaded), and each sanitizer seen to catch the bug planted for it:

    AddressSanitizer + UBSan   every kernel over the cases; planted: im2col reading one past the end of x
    ThreadSanitizer            the kernels that share memory (batch norm, the depthwise weight gradient: block_sum)
                               with each CUDA thread an OS thread and __syncthreads a barrier; planted: a shared
                               ``acc[0] += x`` without atomics, and block_sum without its first __syncthreads

The race of the shared accumulator is invisible to the normal emulator (it runs one thread at a time, so the
sum comes out right): that is checked too, as the reason this build exists.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("sanitized_cases.py")


def runtime(name):
    """The path of g++'s sanitizer runtime ``name`` (libasan.so, libtsan.so), or None."""
    if shutil.which("g++") is None:
        return None
    path = subprocess.run(["g++", f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


ASAN, TSAN = runtime("libasan.so"), runtime("libtsan.so")
needs_asan = pytest.mark.skipif(ASAN is None, reason="needs g++ with libasan (apt-get install g++)")
needs_tsan = pytest.mark.skipif(TSAN is None, reason="needs g++ with libtsan (apt-get install g++)")


def run(mode, *args):
    env = dict(os.environ, MINITORCH_EMULATOR_SANITIZE=mode, ASAN_OPTIONS="detect_leaks=0",
               UBSAN_OPTIONS="print_stacktrace=1", TSAN_OPTIONS="halt_on_error=1 exitcode=66")
    if mode:
        env["LD_PRELOAD"] = ASAN if mode.startswith("address") else TSAN
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600,
                          env=env)


@needs_asan
def test_every_kernel_is_clean_under_address_and_undefined_behavior_sanitizers():
    done = run("address,undefined")
    assert done.returncode == 0 and "ok: 76 cases" in done.stdout, done.stdout[-1000:] + done.stderr[-4000:]


@needs_asan
def test_asan_catches_im2col_reading_one_past_the_end():
    done = run("address,undefined", "--plant", "im2col_read_past_end", "--families", "conv", "--dtypes", "float32")
    assert done.returncode != 0, done.stdout[-1000:]
    assert "AddressSanitizer: heap-buffer-overflow" in done.stderr and "in im2col_f32" in done.stderr, \
        done.stderr[-3000:]


@needs_tsan
def test_the_shared_memory_kernels_are_race_free_with_a_thread_per_cuda_thread():
    done = run("thread", "--families", "batch_norm,conv,gpu_only", "--dtypes", "float64")
    assert done.returncode == 0 and "ok: 24 cases" in done.stdout, done.stdout[-1000:] + done.stderr[-4000:]


@needs_tsan
@pytest.mark.parametrize("plant", ["shared_acc_race", "block_sum_no_sync"])
def test_tsan_catches_the_planted_race(plant):
    done = run("thread", "--plant", plant, "--families", "batch_norm", "--dtypes", "float32")
    assert done.returncode == 66, done.stdout[-1000:] + done.stderr[-3000:]
    assert "ThreadSanitizer: data race" in done.stderr and "block_sum" in done.stderr, done.stderr[-3000:]


@needs_tsan
def test_the_shared_accumulator_race_passes_the_normal_emulator():
    done = run("", "--plant", "shared_acc_race", "--families", "batch_norm", "--dtypes", "float32")
    assert done.returncode == 0 and "ok: 12 cases" in done.stdout, done.stdout[-1000:] + done.stderr[-3000:]
