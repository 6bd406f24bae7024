"""What one training step costs at the device boundary, counted by the strict CuPy stand-in (support/strict_cupy.py,
support/standin_ledger.py) while ``python -m zoo.train MODEL mnist --device cuda`` runs end to end on generated data
(tests/gpu_standin/probe.py, a fresh interpreter: the stand-in is bound before minitorch_cnn is imported).

Budgets per training step (the second step: the first also allocates the optimizer's state):
  - exactly one device -> host sync (the loss and top-1/top-5 hits, fetched together by zoo.run.loop.batch_scores)
  - no host array reaches a kernel (the stand-in raises, as CuPy does; the probe would exit non-zero)
  - host -> device copies: the batch and its labels, once each (functional/loss.labels_on: the loss's copy of
    the labels is the one batch_scores uses)
  - no hidden ``cupy.matmul`` copies (functional/conv.py's 2-D GEMMs; before them 5, 36 and 59 per step)
  - launches (project kernels + CuPy's kernels + hidden copies) at most today's count: a ceiling that catches
    a regression; ResNet-18's also at most a third of the count issue 19 started from.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minitorch_cnn.kernels.cuda import emulator

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("probe.py")
BATCH = 2
pytestmark = pytest.mark.skipif(not emulator.available(), reason="the stand-in's kernels run on the CUDA emulator "
                                                                   "(needs g++)")

# Launches measured on the steady (second) step at batch 2, Dec 2026.
# Before issue 19's §2 (one fused optimizer launch per group, batch norm's running statistics and batch count in
# its forward kernel, block-mean adaptive pooling, 2-D GEMMs, labels sent once, cross-entropy in one kernel):
# 185, 2335 and 1059 launches, 3 h2d.
LAUNCHES_TODAY = {"lenet5": 95, "mobilenet_v2": 661, "resnet18": 339}
ISSUE_RESNET18 = 1250   # ResNet-18's launches per step when issue 19 was filed (batch 128); its goal: a third
H2D_TODAY = 2   # tensor.py: the batch; functional/loss.py labels_on: the labels (batch_scores reuses that copy)


def probe(model, *flags, timeout=600):
    done = subprocess.run([sys.executable, str(PROBE), model, "--batch", str(BATCH), "--steps", "2", *flags],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    return done


@pytest.fixture(scope="module", params=list(LAUNCHES_TODAY))
def run(request):
    done = probe(request.param)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "done: test accuracy" in done.stdout, done.stdout[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(report["steps"]) == 2, report
    return request.param, report["steps"][1], report["sites"]


def test_one_sync_no_host_array_at_a_kernel_and_launches_within_todays(run):
    model, step, sites = run
    print(f"{model} batch {BATCH} step: {step}")
    assert step["sync"] == 1, (model, sites["sync"])
    assert step["host_to_kernel"] == 0, (model, sites["host_to_kernel"])
    assert step["h2d"] <= H2D_TODAY, (model, sites["h2d"])
    assert step["launch"] > 0, f"{model}: no CUDA kernel ran: the run did not use the device"
    assert step["launches"] <= LAUNCHES_TODAY[model], (model, step)
    assert model != "resnet18" or step["launches"] <= ISSUE_RESNET18 // 3, step


def test_no_hidden_matmul_copies(run):
    model, step, sites = run
    assert step["hidden"] == 0, (model, step["hidden_bytes"], sites["hidden"])


def test_a_host_batch_planted_in_the_training_loop_fails_the_run():
    done = probe("lenet5", "--plant")
    assert done.returncode != 0, done.stdout[-2000:]
    assert "Conv2d: inputs on different devices: cpu (NumPy) and cuda:0" in done.stderr, done.stderr[-2000:]
