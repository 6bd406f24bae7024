"""Whole processes: ``kill -9`` at random moments, SIGINT and SIGTERM from outside, two runs on one folder.
Each start costs ~2 s of imports, so the loop is short; the seeded moments make a failure reproducible."""
import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zoo.run.checkpoint import CheckpointError, load_checkpoint

REPO = Path(__file__).resolve().parents[2]
ARGS = ["--verify", "structure", "--no-download", "--batch-size", "16", "--limit-test", "20", "--limit-train", "48"]


def start(data_dir, out, *extra, epochs=8):
    env = {**os.environ, "XDG_CACHE_HOME": str(Path(out).parent / "cache"), "PYTHONPATH": str(REPO)}
    env.pop("MINITORCH_DATA", None)
    return subprocess.Popen([sys.executable, "-m", "zoo.train", "lenet5", "mnist", "--data-dir", str(data_dir),
                             "--out", str(out), "--epochs", str(epochs), *ARGS, *extra],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_consistent(out):
    """The folder is resumable or has no checkpoint yet; metrics.csv is whole and never ahead of it."""
    try:
        meta = load_checkpoint(out)[0]
    except CheckpointError as err:
        assert "no checkpoint at" in str(err), err
        return 0
    if (out / "metrics.csv").exists():
        rows = list(csv.DictReader((out / "metrics.csv").open()))
        assert [int(r["epoch"]) for r in rows] == list(range(1, len(rows) + 1))
        assert len(rows) <= len(meta["history"])
    return meta["position"]["epoch"]


def test_kill_9_at_random_moments_always_leaves_a_resumable_folder(data_dir, tmp_path):
    out, moments = tmp_path / "run", random.Random(20).sample([1.5, 2.0, 2.5, 3.0, 3.5, 4.0], 4)
    for moment in moments:
        process = start(data_dir, out, *(["--resume"] if (out / "checkpoint.npz").exists() else []))
        time.sleep(moment)
        process.kill()
        process.communicate()
        assert_consistent(out)
    resumed = start(data_dir, out, *(["--resume"] if (out / "checkpoint.npz").exists() else []))
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert assert_consistent(out) == 8 and not list(out.glob(".*tmp*")) and not (out / ".lock").exists()


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_from_outside_saves_and_exits_with_its_status(data_dir, tmp_path, signum, status):
    out = tmp_path / "run"
    process = start(data_dir, out, epochs=200)
    deadline = time.monotonic() + 60
    while not (out / "checkpoint.npz").exists() and time.monotonic() < deadline:
        time.sleep(0.05)                                         # at least one epoch done: in training now
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == status, err
    assert "saved" in err.strip().splitlines()[-1] and "Traceback" not in err
    assert assert_consistent(out) >= 1


def test_two_runs_into_one_folder_never_mix(data_dir, tmp_path):
    out = tmp_path / "run"
    first, second = start(data_dir, out, "--seed", "1"), start(data_dir, out, "--seed", "2")
    results = [(p.returncode, err) for p in (first, second) for _, err in [p.communicate(timeout=120)]]
    assert sorted(code for code, _ in results) == [0, 1], results
    loser = next(err for code, err in results if code == 1).strip().splitlines()[-1]
    assert loser.startswith("error: ") and ("in use by another training run" in loser
                                            or "already holds a checkpoint" in loser), loser
    winner_seed = 1 if first.returncode == 0 else 2
    meta = load_checkpoint(out)[0]
    assert meta["config"]["seed"] == json.loads((out / "config.json").read_text())["seed"] == winner_seed


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="zombie detection reads Linux's /proc")
def test_a_lock_whose_owner_is_a_zombie_is_stale(tmp_path):
    """A run killed with its Dask worker is a zombie until reaped: it answers signal 0 but writes nothing, so
    its lock must not keep the retried run out (the race test_cluster's killed-worker test caught)."""
    from zoo.run.lock import LOCK_NAME, RunLock, holder, process_exists
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:                 # exited, and not reaped: we never wait() for it
        if Path(f"/proc/{child.pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] == b"Z":
            break
        time.sleep(0.05)
    else:
        pytest.fail("the child never became a zombie")
    (tmp_path / LOCK_NAME).write_text(f"{child.pid}\n")
    assert os.kill(child.pid, 0) is None and not process_exists(child.pid) and holder(tmp_path) is None
    with RunLock(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid()) and holder(tmp_path) == os.getpid()
    child.wait()
