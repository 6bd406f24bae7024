"""kernels/cpu/jit.py picks Numba's threading layer: TBB where the tbb wheel's library is installed (a dependency
on Linux x86-64), else workqueue, never OpenMP; a NUMBA_THREADING_LAYER the user set wins. Each case runs in a
fresh process, since a process picks its layer once."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import numpy as np, numba
from minitorch_cnn.kernels.cpu import elementwise, jit
elementwise.clamp(np.ones(jit.PARALLEL_FROM, np.float32))   # runs the threaded copy: the layer starts
print(numba.threading_layer())
"""


def _layer(**env):
    full = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    done = subprocess.run([sys.executable, "-c", PROBE], env={**full, "PYTHONPATH": str(ROOT), **env},
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


def test_tbb_where_its_library_is_installed_else_workqueue():
    installed = any((Path(base) / "lib" / "libtbb.so.12").exists() for base in (sys.prefix,))
    if sys.platform == "linux" and os.uname().machine == "x86_64" and not installed:
        pytest.fail("the tbb wheel (a dependency on Linux x86-64, pyproject.toml) is not installed here")
    assert _layer() == ("tbb" if installed else "workqueue")


def test_the_users_choice_wins():
    assert _layer(NUMBA_THREADING_LAYER="workqueue") == "workqueue"


def test_a_child_that_inherits_tbb_loads_its_library_too():
    """This module's choice reaches child processes through the environment (benchmarks, tests): asked for TBB,
    a child must find pip's libtbb itself, as the parent did."""
    if not (Path(sys.prefix) / "lib" / "libtbb.so.12").exists():
        pytest.skip("the tbb wheel is not installed in this environment (it is a dependency on Linux x86-64 only)")
    assert _layer(NUMBA_THREADING_LAYER="tbb") == "tbb"
