"""minitorch_cnn tells OpenBLAS's idle threads to sleep instead of spin (minitorch_cnn/_openblas.py): set
before NumPy loads OpenBLAS, or, when NumPy came first, by restarting OpenBLAS's threads; never over the user's
own value."""
import os
import subprocess
import sys

import pytest


def run(code, **env):
    clean = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env={**clean, **env},
                          capture_output=True, text=True, check=True)
    return done.stdout.strip(), done.stderr


def test_the_timeout_is_set_before_numpy_loads():
    printed, imports = run("import os, minitorch_cnn; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])")
    assert printed == "16"
    names = [line.rsplit("|", 1)[1].strip() for line in imports.splitlines() if line.startswith("import time:")]
    assert names.index("minitorch_cnn._openblas") < names.index("numpy")     # OpenBLAS reads it when it loads


def test_a_users_value_is_kept():
    printed, _ = run("import os, minitorch_cnn; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])",
                     OPENBLAS_THREAD_TIMEOUT="12")
    assert printed == "12"


SPIN = """
import time, numpy as np
{import_ours}
from threadpoolctl import threadpool_info
threads = max(i["num_threads"] for i in threadpool_info() if i["internal_api"] == "openblas")
a = np.ones((1024, 1024), np.float32)
spun = []
for _ in range(3):
    a @ a                                    # OpenBLAS's threads work, then idle
    cpu = time.process_time()
    time.sleep(0.03)                         # nothing of ours runs: what the process uses now is their spinning
    spun.append(time.process_time() - cpu)
print(threads, min(spun))
"""


def spin_after_a_product(import_ours):
    printed, _ = run(SPIN.format(import_ours=import_ours))
    threads, seconds = printed.split()
    if int(threads) < 2:
        pytest.skip(f"OpenBLAS runs {threads} thread here: it has no idle threads to spin")
    return float(seconds)


def test_imported_after_numpy_the_threads_still_sleep():
    # NumPy first, as most scripts begin: OpenBLAS loaded with its default, so minitorch_cnn has it re-read its
    # environment and restart its threads. The control, without minitorch_cnn, shows the test can see spinning.
    assert spin_after_a_product("") > 0.01                           # OpenBLAS's default: ~0.1 s of spinning
    assert spin_after_a_product("import minitorch_cnn") < 0.005      # 2**16 cycles: ~20 microseconds
