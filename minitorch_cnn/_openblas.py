"""OpenBLAS's idle threads told to sleep instead of spin: imported first by minitorch_cnn/__init__.py.

After each multi-threaded product OpenBLAS's worker threads keep spinning for 2**THREAD_TIMEOUT cycles (its default
2**28, about a tenth of a second) in case another product follows. Here what follows is our own parallel work -
Numba's prange kernels and the Winograd threads - on the same cores, and the spinning threads take those cores
from it. ResNet-18's training step at batch 64 (2 cores, AVX-512, OpenBLAS 0.3.31, 2026-12-07; one process per
value): 1861-1890 ms with the default 28, 1374-1446 ms with 4 to 22, 1530 ms with 24; its forward 620-635 ms and
374-422 ms. 16 (about 20 microseconds) still spins through the back-to-back calls of a small model, whose times
(LeNet-5, 12-19 ms a step) did not move beyond this machine's noise at any value.

OpenBLAS reads the variable once, when it loads, which NumPy's import does: so it applies when minitorch_cnn is
imported before NumPy (``python -m zoo.X`` does so), and a value already in the environment is kept.
"""
import os

THREAD_TIMEOUT = "16"         # log2 of the cycles an idle OpenBLAS thread spins (OpenBLAS accepts 4 to 30)
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", THREAD_TIMEOUT)
