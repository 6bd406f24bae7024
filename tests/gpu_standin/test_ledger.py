"""The stand-in's ledger sees what a GPU would pay for: each kind of event recorded once, at the caller's line.
A fresh interpreter (the stand-in must be bound before minitorch_cnn is imported)."""
import os
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

def kinds(run):
    LEDGER.reset()
    run()
    return [(k, site.split(":")[0]) for k, _, site, _ in LEDGER.events]

x = cp.ones((2, 3, 4), np.float32)
assert kinds(lambda: x.get()) == [("sync", "<string>")], LEDGER.events
assert kinds(lambda: float(x.sum())) == [("op", "<string>"), ("sync", "<string>")], LEDGER.events
assert kinds(lambda: cp.asarray(np.zeros(3))) == [("h2d", "<string>")], LEDGER.events
assert kinds(lambda: x.reshape(6, 4)) == [], LEDGER.events                      # a view launches nothing
assert kinds(lambda: x[:, 1]) == [], LEDGER.events
assert [k for k, _ in kinds(lambda: cp.ascontiguousarray(x.transpose(0, 2, 1)))] == ["op"]
b = cp.ones((2, 4, 5), np.float32)
assert [k for k, _ in kinds(lambda: x @ b)] == ["op"]                               # contiguous: no copy
assert [k for k, _ in kinds(lambda: cp.matmul(x, b.transpose(0, 1, 2)[:, :, ::-1]))] == ["hidden", "op"]
out = cp.empty((3, 2, 5), np.float32).transpose(1, 0, 2)
assert [k for k, _ in kinds(lambda: cp.matmul(x, b, out=out))] == ["hidden", "op"]
assert [k for k, _ in kinds(lambda: b[0].T @ x[0].T)] == ["op"]                       # 2-D: transpose flags, no copy
LEDGER.reset()
from minitorch_cnn.kernels.cuda.launch import load_kernel
kernel = load_kernel("elementwise", "clamp_backward", np.float32, like=x)
d = cp.ones(4, np.float32)
try:
    kernel((1,), (32,), (d, np.ones(4, np.float32), d, np.int64(4), np.float32(0), np.int32(0)))
except TypeError as err:
    print("REFUSED", err)
kernel((1,), (32,), (d, d, cp.empty(4, np.float32), np.int64(4), np.float32(0), np.int32(0)))
print("COUNTS", LEDGER.count("host_to_kernel"), LEDGER.count("launch"))
from minitorch_cnn import workspace
held = workspace.keep((1024, 1024, 64), np.float32, cp)         # 256 MB: past the host's budget, not the GPU's
assert isinstance(held, cp.ndarray) and workspace.keep_budget(cp) == 10 << 30, workspace.keep_budget(cp)
assert workspace.kept_bytes(cp) == 256 << 20 and workspace.kept_bytes() == 0
del held
assert workspace.kept_bytes(cp) == 0
print("KEEP ok")
"""


def test_the_ledger_counts_syncs_copies_views_hidden_matmul_copies_and_host_arrays_at_kernels():
    """(and workspace.keep budgets GPU memory by the device's size, not the host's 24 MB)"""
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"))],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "REFUSED clamp_backward_f32: argument 1: Unsupported type" in done.stdout, done.stdout
    assert "COUNTS 1 1" in done.stdout, done.stdout       # the refused launch recorded, the good one launched
    assert "KEEP ok" in done.stdout, done.stdout          # workspace.keep's GPU budget: 1/8 of the device
