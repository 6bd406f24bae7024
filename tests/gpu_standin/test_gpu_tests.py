"""Every test of tests/kernels/test_cuda_gpu.py (written for a real GPU: ``@pytest.mark.gpu``) run here, with
``import cupy`` bound to the strict stand-in (support/strict_cupy.py) by the plugin gpu_standin/standin_plugin.py,
in a fresh pytest process (the stand-in must be bound before minitorch_cnn is imported, and this process has
imported it). The GPU tests then see one "CUDA device", device arrays that refuse implicit host conversion
and host/device mixing, and the kernels running on the host emulator. They must all run and pass: none skipped.
"""
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from minitorch_cnn.kernels.cuda import emulator

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not emulator.available(), reason="the stand-in's kernels run on the CUDA emulator "
                                                                   "(needs g++)")


def test_every_gpu_test_passes_with_cupy_bound_to_the_strict_standin(tmp_path):
    report = tmp_path / "gpu.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "gpu_standin.standin_plugin",
         "tests/kernels/test_cuda_gpu.py", f"--junitxml={report}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])})
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert counts["tests"] >= 10 and counts["failures"] == counts["errors"] == counts["skipped"] == 0, (
        counts, done.stdout[-3000:])
