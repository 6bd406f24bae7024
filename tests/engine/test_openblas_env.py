"""minitorch_cnn tells OpenBLAS's idle threads to sleep instead of spin (minitorch_cnn/_openblas.py): set
before NumPy loads OpenBLAS, or it has no effect, and never over the user's own value."""
import os
import subprocess
import sys


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
