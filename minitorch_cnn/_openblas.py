"""OpenBLAS's idle threads told to sleep instead of spin: imported first by minitorch_cnn/__init__.py.

After each multi-threaded product OpenBLAS's worker threads keep spinning for 2**THREAD_TIMEOUT cycles (its default
2**28, about a tenth of a second) in case another product follows. Here what follows is our own parallel work -
Numba's prange kernels and the Winograd threads - on the same cores, and the spinning threads take those cores
from it. ResNet-18's training step at batch 64 (2 cores, AVX-512, OpenBLAS 0.3.31, 2026-12-07; one process per
value): 1861-1890 ms with the default 28, 1374-1446 ms with 4 to 22, 1530 ms with 24; its forward 620-635 ms and
374-422 ms. 16 (about 20 microseconds) still spins through the back-to-back calls of a small model, whose times
(LeNet-5, 12-19 ms a step) did not move beyond this machine's noise at any value.

OpenBLAS reads the variable once, when it loads, which NumPy's import does. Imported before NumPy (``python -m
zoo.X`` does so), the environment is enough. Imported after it (``import numpy as np`` first, as most scripts
and notebooks begin), OpenBLAS has read its default already: then it is told to read its environment again and
its threads are restarted, which is where it applies the timeout (``restart_threads``; ResNet-18's step, F(4x4)
Winograd, 2026-12-07: 971-999 ms imported first, 1198-1236 ms imported after NumPy without the restart).
A value already in the environment is the user's, and kept.
"""
import ctypes
import os

THREAD_TIMEOUT = "16"         # log2 of the cycles an idle OpenBLAS thread spins (OpenBLAS accepts 4 to 30)


def loaded_openblas():
    """Paths of the OpenBLAS libraries already mapped into this process (empty where /proc is not Linux's)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.rsplit("/", 1)[-1].lower()}
    except OSError:
        return []
    return sorted(p for p in paths if p.startswith("/"))


def restart_threads(path):
    """Make the OpenBLAS at ``path`` read its environment again and restart its threads, which then take the
    timeout; False where the library lacks those entry points (an OpenMP build, another BLAS)."""
    lib = ctypes.CDLL(path)      # the library already loaded: the same handle, nothing loads twice
    try:
        read_env, shutdown, start = lib.openblas_read_env, lib.blas_thread_shutdown_, lib.blas_thread_init
    except AttributeError:
        return False
    read_env()
    shutdown()
    start()
    return True


if "OPENBLAS_THREAD_TIMEOUT" not in os.environ:
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = THREAD_TIMEOUT
    for _path in loaded_openblas():
        restart_threads(_path)
