"""Freed activations kept for the next step instead of handed back to the OS (glibc's malloc; Linux).

A training step allocates the same activation-sized arrays every step and frees them at its end. glibc maps an
array above its mmap threshold (128 kB at first, raised towards 32 MB as such arrays are freed) straight from the
OS and unmaps it on free, and gives the top of its heap back once more than twice that is free; so each step's
arrays come as fresh pages, every 4 kB of which faults on its first write. With the threshold fixed at glibc's
maximum, 32 MB, and the heap trimmed only above 1 GB, the next step reuses what the last one freed (NumPy's own
small-array cache does not reach these sizes). MobileNetV2's train step, batch 64, 2 threads, AVX-512,
2026-12-07, three processes each, alternating, minimum (median) of 8 steps: 1348-1399 (1471-1688) ms with glibc's
defaults, 1180-1208 (1252-1281) ms with these; MobileNetV1, ResNet-18, VGG-16 and the forwards within the noise.
The cost: the process keeps its peak heap (what a step needs anyway) instead
of returning it between steps.

Set at import (``minitorch_cnn/__init__.py``) through ``mallopt``; not where malloc is not glibc's, not where the
user tunes malloc already (``GLIBC_TUNABLES`` naming glibc.malloc, ``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_``), and not with ``MINITORCH_CNN_MALLOC=os``.
"""
import ctypes
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3     # mallopt's parameter numbers (glibc's malloc.h)
MMAP_THRESHOLD = 32 << 20                       # glibc's largest (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory():
    """Set the two thresholds; True if they were set, False where this process keeps glibc's defaults."""
    env = os.environ
    if (env.get("MINITORCH_CNN_MALLOC") == "os" or "glibc.malloc" in env.get("GLIBC_TUNABLES", "")
            or "MALLOC_MMAP_THRESHOLD_" in env or "MALLOC_TRIM_THRESHOLD_" in env
            or platform.libc_ver()[0] != "glibc"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


KEPT = keep_freed_memory()
