"""Dropout's draws on a GPU come from one generator per GPU, made once (CuPy initialises a generator's state
on the device: a kernel over ~100k curand states each time), seeded from the framework's generator, so a
seeded run repeats and manual_seed / set_rng_state (a resumed checkpoint) start it again from that state.
A fresh interpreter: the stand-in is bound before minitorch_cnn is imported."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys
sys.path[0:0] = [{root!r}, {tests!r}]
from support import strict_cupy
cp = strict_cupy.install()
import numpy as np
from support.standin_ledger import LEDGER
from minitorch_cnn import random

like = cp.zeros((4, 5), np.float32)

def made():
    return sum(1 for kind, what, *_ in LEDGER.events if what == "random.default_rng")

def draws(n):
    return [random.uniform((4, 5), like).get() for _ in range(n)]

random.manual_seed(7)
LEDGER.reset()
first = draws(3)
assert made() == 1, LEDGER.events                     # one generator for three draws
assert first[0].dtype == np.float32 and not np.array_equal(first[0], first[1])
random.manual_seed(7)
assert all(np.array_equal(a, b) for a, b in zip(first, draws(3))) and made() == 2   # a seeded run repeats
state = random.get_rng_state()                        # as a checkpoint saves it
random.set_rng_state(state)                           # as a resumed run restores it: a new device generator
resumed = draws(2)
random.set_rng_state(state)                           # resumed twice: the same draws
assert all(np.array_equal(a, b) for a, b in zip(resumed, draws(2))) and made() == 4
print("ok")
"""


def test_one_device_generator_reused_and_reseeded_from_the_framework_state():
    code = SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr[-3000:]
