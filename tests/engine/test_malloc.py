"""minitorch_cnn keeps freed activation-sized arrays in malloc's heap for reuse (minitorch_cnn/_malloc.py): the
second "step" of four 20 MB arrays faults no fresh pages in, where with glibc's defaults (which give part of the
freed 80 MB back) thousands are faulted in again; and a
user's own malloc settings or MINITORCH_CNN_MALLOC=os keep the defaults."""
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's; other libcs keep theirs")

CODE = """
import resource, numpy as np, minitorch_cnn._malloc as m
faults = []
for _ in range(4):   # a "step": four 20 MB activations made, then all freed at its end
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step = [np.ones(5 << 20, np.float32) for _ in range(4)]
    del step
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(m.KEPT, min(faults[1:]))
"""


def run(**env):
    clean = {k: v for k, v in os.environ.items()
             if k not in ("MINITORCH_CNN_MALLOC", "GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}
    out = subprocess.run([sys.executable, "-c", CODE], env={**clean, **env}, capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0] == "True", int(out[1])


def test_freed_arrays_are_reused_without_fresh_page_faults():
    kept, faults = run()
    assert kept and faults < 200, faults                  # 4 x 5120 pages of 4 kB were faulted in the first time only
    default, faults = run(MINITORCH_CNN_MALLOC="os")
    assert not default and faults > 1000, faults          # glibc's defaults: part of it fresh from the OS every step


def test_the_users_malloc_settings_are_kept():
    assert not run(GLIBC_TUNABLES="glibc.malloc.trim_threshold=1048576")[0]
    assert not run(MALLOC_TRIM_THRESHOLD_="1048576")[0]
