"""Numba's threading layer, chosen when the package is imported, before anything starts Numba's threads.

TBB where its library is installed (the ``tbb`` wheel, a dependency on Linux x86-64), else workqueue; a
NUMBA_THREADING_LAYER the user sets wins. Set through the environment, because Numba re-reads its configuration
from there before compiling, and child processes (benchmarks, zoo.study's workers, tests) inherit it: a child
asked for TBB loads the library here too. This module imports no Numba (an import of the package stays cheap).
"""
import ctypes
import os
import site
import sys


def _threading_layer():
    """Numba's threading layer: TBB where its library is installed (the ``tbb`` wheel, a dependency on Linux
    x86-64), else workqueue; an explicit NUMBA_THREADING_LAYER from the user wins.

    Why not OpenMP: its threads spin after each parallel loop and steal the cores from OpenBLAS's threads in
    the matrix multiply that follows (a ResNet-18 step measured 5.6 s with OpenMP, 3.5 s with workqueue on 2
    cores). Why TBB before workqueue: workqueue's threads sleep at once, and the calling thread only waits, so
    every parallel loop wakes both cores; a core that wakes late (a fraction of a millisecond on a VM) stretches
    the loop. LeNet-5's step was bimodal with it (percentiles 5.7/7.8/8.2/8.6/9.8 ms); TBB's caller works in the
    loop and its workers wait briefly before they sleep: 4.9-5.1/5.2-5.4/5.4-5.5/5.5-5.6/5.7-6.4 ms. ResNet-18's
    step median 1302 -> 1182 ms, MobileNetV1's 305 -> 244 ms (2 cores, AVX-512, alternating processes).
    """
    chosen = os.environ.get("NUMBA_THREADING_LAYER")   # also what this module set in a parent process
    if chosen in (None, "tbb", "default", "threadsafe"):
        tbb = _load_tbb()
        return chosen or ("tbb" if tbb else "workqueue")
    return chosen


def _load_tbb():
    """Whether TBB's library loaded. pip puts libtbb.so.12 in the environment's lib/, which the loader does not
    search and Numba's tbbpool module has no run path to: loaded here first (RTLD_GLOBAL), tbbpool's dependency
    resolves to it. Whether Numba accepts its version is checked where Numba is imported (kernels/cpu/jit.py)."""
    for lib in [os.path.join(base, "lib", "libtbb.so.12") for base in (sys.prefix, site.getuserbase())]:
        if os.path.exists(lib):
            try:
                ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
                return True
            except OSError:
                return False
    return False


LAYER = os.environ["NUMBA_THREADING_LAYER"] = _threading_layer()
