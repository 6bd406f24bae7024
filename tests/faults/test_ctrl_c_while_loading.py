"""Ctrl-C while ``python -m zoo.X`` is still loading its libraries (Numba takes a second or more) ends with one
line and exit 130, not a KeyboardInterrupt traceback from inside an import."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("delay", [0.1, 0.3])
def test_ctrl_c_during_imports_is_one_line_and_exit_130(delay):
    process = subprocess.Popen([sys.executable, "-m", "zoo.summary", "lenet5"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    if process.returncode == 0:
        pytest.skip(f"zoo.summary finished within {delay} s, before the signal: nothing was interrupted")
    # 130, or killed by SIGINT itself (-2 here): a shell shows both as $? = 130. The second happens now and
    # then when the signal lands at the very end of the run (seen once in 8 tries on this machine).
    assert process.returncode in (130, -signal.SIGINT), (process.returncode, err)
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "interrupted", err


def test_import_zoo_outside_the_command_lines_keeps_pythons_handler():
    code = "import signal, zoo; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ}, timeout=120)
    assert done.stdout.strip() == "True", done.stderr
