"""The Stepper and zoo.summary on a model on the GPU, with ``import cupy`` bound to tests/support/strict_cupy.py
(device arrays that refuse implicit host conversion, kernels on the CUDA emulator): the host image is moved
once, every step's copy, plan, view, gradcheck and timing work with device arrays, and the summary plans for
the GPU (im2col, not the CPU-only Winograd). A fresh interpreter, since the stand-in is bound before import."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from minitorch_cnn.kernels.cuda import emulator

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """\
import sys
sys.path[0:0] = [{root!r}]
sys.path.append({tests!r})
from support import strict_cupy
strict_cupy.install()
import zoo
from minitorch_cnn import nn
from minitorch_cnn.lab import Stepper, sample_image
from zoo.summary import layer_table
model = zoo.get_model("lenet5", in_channels=1).eval()
x, label = sample_image("photo", channels=1)
st = Stepper(model, x, device="cuda")
assert str(st.device) == "cuda:0" and str(st.x.device) == "cuda:0"
s = st["features.conv2"]
assert s.plan().algorithm == "im2col" and s.im2col().shapes == ((16, 150), (150, 100))
assert s.gradcheck(samples=4).passed and s.time(repeat=1)["forward_ms"] > 0
assert st.backward(3) > 0 and len(st.grad_norms()) == len(st)
conv = nn.Conv2d(16, 16, 3, padding=1).to("cuda")   # Winograd on the CPU, im2col on the GPU
rows, _ = layer_table(conv, (16, 8, 8), batch_size=2)
assert rows[0]["algorithm"] == "im2col", rows
print("ok")
"""


@pytest.mark.skipif(not emulator.available(), reason="the stand-in's kernels run on the CUDA emulator (needs g++)")
def test_stepper_and_summary_with_the_model_on_the_gpu():
    script = SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "MPLBACKEND": "Agg"})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
