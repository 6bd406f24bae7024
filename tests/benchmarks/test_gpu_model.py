"""The GPU cost model (benchmarks/gpu_model.py, ``python -m benchmarks.gpu --model``) runs without a GPU, counts
the forward GEMMs' FLOPs the layer table counts independently (2 x MACs x batch), predicts a faster step on the
faster device and with TF32, and refuses a layer it has no rule for instead of pricing it at zero."""
import subprocess
import sys
from pathlib import Path

import pytest

import zoo
from benchmarks import gpu_model
from minitorch_cnn.lab.layer_table import layer_table

ROOT = Path(__file__).resolve().parents[2]
FORWARD_GEMMS = {"conv GEMM", "linear GEMM", "depthwise forward"}


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_forward_flops_are_twice_the_layer_tables_macs(name):
    kernels = gpu_model.step_kernels(name, batch=8)
    _, totals = layer_table(zoo.get_model(name), (3, 32, 32), batch_size=8)
    forward = sum(k["flops"] for k in kernels if k["name"] in FORWARD_GEMMS)
    assert forward == pytest.approx(2 * totals["macs"] * 8, rel=1e-9)
    assert all(k["bytes"] > 0 for k in kernels)


def test_the_faster_device_and_tf32_predict_a_shorter_step():
    kernels = gpu_model.step_kernels("resnet18", batch=16)
    h100, a100 = (sum(gpu_model.roofline(kernels, d)) for d in ("H100 SXM", "A100 SXM 80GB"))
    assert 0 < h100 < a100
    assert sum(gpu_model.roofline(kernels, "H100 SXM", tf32=True)) < h100


def test_a_function_without_a_rule_is_an_error_not_free(monkeypatch):
    monkeypatch.delitem(gpu_model.RULES, "Add")
    with pytest.raises(NotImplementedError, match="no cost rule for Add \\(in resnet18\\)"):
        gpu_model.step_kernels("resnet18", batch=2)


def test_the_command_prints_the_prediction_labelled_as_one():
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--model", "--batch", "32"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "a prediction, not a measurement" in done.stdout and "resnet18, batch 32" in done.stdout
    assert "H100 SXM: 3.35 TB/s" in done.stdout and "predicted step" in done.stdout
    assert "issue 19's estimate, not measured" in done.stdout
