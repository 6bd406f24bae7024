"""Issue 20's nine bad outcomes: each test failed before its fix (lost work or output that was untrue)."""
import gzip
import io
import itertools
import os
import signal
import subprocess
import sys
import tarfile
import tracemalloc

import numpy as np
import pytest
from conftest import Tiny, cli, error_lines, train

from minitorch_cnn import Tensor, files
from minitorch_cnn.data import DataError, load_dataset
from minitorch_cnn.data.idx import read_idx
from minitorch_cnn.optim import SGD
from zoo import evaluate as evaluate_cli
from zoo.run.checkpoint import CheckpointError, load_checkpoint
from zoo.run.loop import topk_hits

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def signal_at(monkeypatch, call, poison=False, signum=signal.SIGINT):
    """Send ``signum`` to this process before the ``call``-th SGD step; with ``poison`` the step makes a
    weight NaN (as a learning rate of 1e300 does) after the loss was found finite."""
    original, calls = SGD.step, {"n": 0}

    def step(self):
        calls["n"] += 1
        if calls["n"] == call:
            os.kill(os.getpid(), signum)
        original(self)
        if poison and calls["n"] == call:
            self.param_groups[0]["params"][0].data[...] = np.nan

    monkeypatch.setattr(SGD, "step", step)


# 1 --------------------------------------------------------------------------------------------------
def test_ctrl_c_after_a_diverging_step_saves_nothing_non_finite(data_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    signal_at(monkeypatch, 1, poison=True)                     # the very first step: nothing good to keep
    assert train(data_dir, out, "--epochs", "1", "--limit-train", "48") == 130
    line = error_lines(capsys)[-1]
    assert "not saved" in line and "inf or NaN" in line and "no checkpoint was written" in line, line
    assert not (out / "checkpoint.npz").exists()


def test_ctrl_c_after_a_diverging_step_keeps_the_last_good_checkpoint(data_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    signal_at(monkeypatch, 5, poison=True)                     # 3 batches an epoch: epoch 2, batch 2
    assert train(data_dir, out, "--epochs", "2", "--limit-train", "48") == 130
    line = error_lines(capsys)[-1]
    assert "not saved" in line and f"the last checkpoint is {out / 'checkpoint.npz'}" in line, line
    meta, state, _ = load_checkpoint(out)
    assert meta["position"]["epoch"] == 1 and all(np.isfinite(v).all() for v in state.values())


def test_divergence_after_resuming_a_mid_epoch_checkpoint_names_it(data_dir, tmp_path, monkeypatch, capsys):
    out, step = tmp_path / "run", SGD.step
    signal_at(monkeypatch, 2)                                  # saved after batch 2 of epoch 1: no epoch done
    assert train(data_dir, out, "--epochs", "1", "--limit-train", "48") == 130
    monkeypatch.setattr(SGD, "step", step)
    monkeypatch.setattr(Tiny, "forward", lambda self, x: self.net(x) * float("nan"))
    capsys.readouterr()
    assert train(data_dir, out, "--resume") == 3
    line = error_lines(capsys)[-1]
    assert "no checkpoint was written" not in line and str(out / "checkpoint.npz") in line, line


# 2 --------------------------------------------------------------------------------------------------
def test_topk_never_counts_nan_as_a_hit():
    logits = np.array([[np.nan] * 10, [0.0] * 9 + [np.nan], [1.0] + [0.0] * 9])
    target = np.array([3, 0, 0])
    assert int(topk_hits(logits, target, 5)) == 1 and int(topk_hits(logits, target, 1)) == 1


def test_evaluate_refuses_nan_weights_naming_the_checkpoint(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(data_dir, out, "--epochs", "1", "--limit-train", "16") == 0
    path = out / "checkpoint.npz"
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["model/net.0.weight"] = np.full_like(arrays["model/net.0.weight"], np.nan)
    np.savez(path, **arrays)
    capsys.readouterr()
    assert cli(evaluate_cli, [out, "--verify", "structure", "--limit-test", "20"]) == 1
    captured = capsys.readouterr()
    assert "top-5 error" not in captured.out
    assert "error:" in captured.err and str(path) in captured.err and "NaN" in captured.err, captured.err


# 3 --------------------------------------------------------------------------------------------------
def test_a_second_run_into_a_locked_folder_is_refused_naming_the_first(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".lock").write_text(f"{sleeper.pid}\n")
        assert train(data_dir, out, "--epochs", "1", "--limit-train", "16") == 1
        line = error_lines(capsys)[-1]
        assert str(sleeper.pid) in line and "in use" in line, line
        assert not (out / "config.json").exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    # The owner is gone: a stale lock, replaced.
    assert train(data_dir, out, "--epochs", "1", "--limit-train", "16") == 0
    assert not (out / ".lock").exists()


def test_the_lock_is_held_for_the_whole_run(data_dir, tmp_path, monkeypatch):
    out, seen = tmp_path / "run", []
    original = Tiny.forward
    monkeypatch.setattr(Tiny, "forward", lambda self, x: seen.append((out / ".lock").read_text()) or original(self, x))
    assert train(data_dir, out, "--epochs", "1", "--limit-train", "16") == 0
    assert seen and all(text.strip() == str(os.getpid()) for text in seen)
    assert not (out / ".lock").exists()


# 4 --------------------------------------------------------------------------------------------------
def test_resume_repairs_metrics_that_lag_the_checkpoint(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(data_dir, out, "--epochs", "2", "--limit-train", "16") == 0
    metrics = (out / "metrics.csv").read_text()
    (out / "metrics.csv").write_text("\n".join(metrics.splitlines()[:2]) + "\n")   # killed between the writes
    (out / "curves.png").unlink()
    (out / "confusion_matrix.png").unlink()                                        # or while drawing it
    assert train(data_dir, out, "--resume") == 0
    assert (out / "metrics.csv").read_text() == metrics
    for png in ("curves.png", "confusion_matrix.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


# 5 --------------------------------------------------------------------------------------------------
def test_a_failed_download_keeps_the_users_own_archive(tmp_path):
    own = tmp_path / "data" / "cifar10" / "cifar-10-binary.tar.gz"
    own.parent.mkdir(parents=True)
    own.write_bytes(b"the user's own (damaged) copy")
    with pytest.raises(DataError):
        load_dataset("cifar10", "test", data_dir=tmp_path / "data", mirrors=[(tmp_path / "nowhere").as_uri()])
    assert own.read_bytes() == b"the user's own (damaged) copy"


def test_the_users_own_archive_is_used_rather_than_downloaded(tmp_path):
    folder = tmp_path / "data" / "cifar10"
    folder.mkdir(parents=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin", "batches.meta.txt"]
        for name in names:
            records = np.zeros((2, 3073), np.uint8).tobytes() if name.endswith(".bin") else b"a\n" * 10
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(records)
            tar.addfile(info, io.BytesIO(records))
    (folder / "cifar-10-binary.tar.gz").write_bytes(buffer.getvalue())
    test = load_dataset("cifar10", "test", data_dir=tmp_path / "data", verify="structure",
                        mirrors=[(tmp_path / "nowhere").as_uri()])
    assert len(test) == 2 and (folder / "cifar-10-binary.tar.gz").exists()


# 6 --------------------------------------------------------------------------------------------------
def test_out_into_an_ordinary_folder_is_refused_unless_forced(data_dir, tmp_path, capsys):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "config.json").write_text("my own config")
    (out / "notes.txt").write_text("chapter 1")
    assert train(data_dir, out, "--epochs", "1", "--limit-train", "16") == 1
    line = error_lines(capsys)[-1]
    assert "not empty" in line and "--force" in line, line
    assert (out / "config.json").read_text() == "my own config"
    assert train(data_dir, out, "--epochs", "1", "--limit-train", "16", "--force") == 0
    assert (out / "notes.txt").read_text() == "chapter 1"
    capsys.readouterr()
    assert train(data_dir, out / "notes.txt", "--epochs", "1") == 1
    assert "is a file, not a folder" in error_lines(capsys)[-1]


def test_a_lock_planted_as_a_link_is_neither_followed_nor_removed(data_dir, tmp_path, capsys):
    out, victim = tmp_path / "run", tmp_path / "victim"
    out.mkdir()
    victim.write_text("precious")
    (out / ".lock").symlink_to(victim)
    assert train(data_dir, out, "--epochs", "1", "--limit-train", "16") == 1
    assert "delete" in error_lines(capsys)[-1] and victim.read_text() == "precious"


# 7 --------------------------------------------------------------------------------------------------
def test_atomic_write_never_follows_a_planted_link(tmp_path, monkeypatch):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    names = itertools.chain(["planted", "planted"], map(str, itertools.count()))
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: next(names))
    (tmp_path / f".out.txt.tmp-{os.getpid()}-planted").symlink_to(victim)
    files.atomic_write_text(tmp_path / "out.txt", "new")
    assert victim.read_text() == "precious" and (tmp_path / "out.txt").read_text() == "new"
    (tmp_path / "link.txt").symlink_to(victim)              # the target itself a link: replaced, not followed
    files.atomic_write_text(tmp_path / "link.txt", "new")
    assert victim.read_text() == "precious" and not (tmp_path / "link.txt").is_symlink()


# 8 --------------------------------------------------------------------------------------------------
def peak_mib(action):
    tracemalloc.start()
    try:
        action()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 2 ** 20


def test_an_idx_bomb_is_refused_before_it_is_decompressed(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    header = (0x0803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (2 ** 31, 28, 28))
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header)
        for _ in range(16):
            f.write(bytes(8 << 20))                            # 128 MiB of zeros, in 128 KiB on disk
    with pytest.raises(DataError, match="declares"):
        read_idx(path, 3)
    assert peak_mib(lambda: pytest.raises(DataError, read_idx, path, 3)) < 16
    lying = tmp_path / "lying-idx3-ubyte.gz"                   # declares little, holds 128 MiB more
    with gzip.open(lying, "wb", compresslevel=1) as f:
        f.write((0x0803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (1, 28, 28)))
        for _ in range(16):
            f.write(bytes(8 << 20))
    assert peak_mib(lambda: pytest.raises(DataError, read_idx, lying, 3)) < 16


@pytest.mark.parametrize("shape", [(2 ** 32 - 1,) * 3,
                                   (2 ** 22, 2 ** 21, 2 ** 21)])    # 2**64 bytes: 0 in int64, as the file holds
def test_idx_sizes_that_overflow_are_one_clear_error(tmp_path, shape):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes((0x0803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in shape))
    with pytest.raises(DataError, match="declares"):
        read_idx(path, 3)


def test_a_checkpoint_bomb_is_refused_without_inflating_it(data_dir, tmp_path):
    out = tmp_path / "run"
    assert train(data_dir, out, "--epochs", "1", "--limit-train", "16") == 0
    path = out / "checkpoint.npz"
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["model/net.0.weight"] = np.zeros((2 ** 27,), np.uint8)       # 128 MiB, compressed to ~130 KB
    np.savez_compressed(path, **arrays)
    assert path.stat().st_size < 2 << 20
    assert peak_mib(lambda: pytest.raises(CheckpointError, load_checkpoint, path)) < 16
    with pytest.raises(CheckpointError, match="declares 1342"):
        load_checkpoint(path)


# 9 --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("data", [[1, 2, 3], np.array([1, 2], np.int64), np.array([True])])
def test_only_floating_tensors_may_require_grad(data):
    with pytest.raises(TypeError, match="floating"):
        Tensor(data, requires_grad=True)
    assert Tensor(data, requires_grad=False).requires_grad is False
    assert Tensor(np.array([1.0, 2.0], np.float64), requires_grad=True).requires_grad

