"""``--device cuda`` end to end without a GPU: ``import cupy`` is bound to tests/support/strict_cupy.py, a stand-in
as strict as CuPy (device arrays that are not NumPy arrays and refuse implicit host conversion; kernels run on
the host emulator), so any host array that reaches a layer on the device fails as it would on a real GPU.

The stand-in must be bound before minitorch_cnn is imported, so each run is a fresh interpreter. Data: the
generated folders of support.formats (``--verify structure --no-download``), never the network.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.formats import write_data_folder

from minitorch_cnn.kernels.cuda import emulator

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not emulator.available(), reason="the stand-in's kernels run on the CUDA emulator "
                                                                   "(needs g++)")

# The repository first on sys.path (``zoo`` is the package, not tests/zoo), tests/ after it for ``support``.
PRELUDE = """\
import runpy, sys
sys.path[0:0] = [{root!r}]
sys.path.append({tests!r})
from support import strict_cupy
strict_cupy.install()
"""


def run_with_standin(body, timeout=600):
    """Run ``body`` in a fresh Python with the stand-in bound as ``cupy``; returns the CompletedProcess."""
    script = PRELUDE.format(root=str(ROOT), tests=str(ROOT / "tests")) + textwrap.dedent(body)
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


def run_module(module, argv):
    """``python -m module *argv`` under the stand-in; prints the CUDA kernel launches it made at the end."""
    return run_with_standin(f"""
        sys.argv = [{module!r}, *{[str(a) for a in argv]!r}]
        try:
            runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
        except SystemExit as stop:
            code = stop.code
        else:
            code = 0
        print("KERNEL LAUNCHES", sum(strict_cupy.launches.values()))
        sys.exit(code)
    """)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_data_folder(tmp_path_factory.mktemp("data"))


def launches(stdout):
    line = [line for line in stdout.splitlines() if line.startswith("KERNEL LAUNCHES")]
    return int(line[-1].split()[-1]) if line else 0


def test_train_and_evaluate_on_cuda_with_a_strict_cupy(data_dir, tmp_path):
    out = tmp_path / "run"
    train = run_module("zoo.train", ["lenet5", "mnist", "--device", "cuda", "--epochs", "1", "--limit-train", "64",
                                     "--limit-test", "32", "--batch-size", "32", "--verify", "structure",
                                     "--no-download", "--data-dir", data_dir, "--out", out])
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    assert "done: test accuracy" in train.stdout and "different devices" not in train.stderr
    assert launches(train.stdout) > 0, "no CUDA kernel ran: the run did not use the device"
    assert (out / "checkpoint.npz").exists()
    evaluate = run_module("zoo.evaluate", [out, "--device", "cuda", "--verify", "structure", "--data-dir", data_dir,
                                           "--limit-test", "32"])
    assert evaluate.returncode == 0, evaluate.stdout[-3000:] + evaluate.stderr[-3000:]
    assert launches(evaluate.stdout) > 0, "no CUDA kernel ran: the evaluation did not use the device"


def test_a_host_array_fed_to_a_layer_on_the_device_names_both_devices():
    result = run_with_standin("""
        import numpy as np
        import minitorch_cnn as mt
        import zoo
        model = zoo.get_model("lenet5", in_channels=1).to("cuda")
        planted = mt.Tensor(np.zeros((2, 1, 32, 32), np.float32))        # the default device is the CPU
        try:
            model(planted)
        except RuntimeError as err:
            print("ERROR", err)
        with mt.using_device("cuda"):
            y = model(mt.Tensor(np.zeros((2, 1, 32, 32), np.float32)))   # the host batch moves, once, here
            print("MOVED", type(y.data).__module__, type(y.data).__name__)
    """, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ERROR Conv2d: inputs on different devices: cpu (NumPy) and cuda:0" in result.stdout, result.stdout
    assert "MOVED support.strict_cupy ndarray" in result.stdout, result.stdout
