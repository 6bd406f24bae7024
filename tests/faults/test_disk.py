"""A full disk: the run stops with one line, leaves no temporary file or lock, and the last checkpoint stays
readable. Needs a small tmpfs, which only root can mount: skipped, saying so, otherwise."""
import os
import subprocess

import pytest
from conftest import error_lines, train

from zoo.run.checkpoint import CheckpointError, load_checkpoint


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a full disk is simulated with a small tmpfs, and mounting one needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"could not mount a tmpfs (no CAP_SYS_ADMIN in this container?): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_one_line_and_leaves_the_folder_resumable(data_dir, small_disk, capsys):
    out = small_disk / "run"
    (small_disk / "filler").write_bytes(bytes(200 * 1024))      # ~50 KB left: the figures will not fit
    status = train(data_dir, out, "--epochs", "3", "--limit-train", "16")
    assert status == 1
    line = error_lines(capsys)[-1]
    assert line.startswith("error: ") and "No space left on device" in line, line
    assert not [p.name for p in out.iterdir() if ".tmp-" in p.name or p.name == ".lock"]
    try:
        load_checkpoint(out)                                    # whole, if one was written before the disk filled
    except CheckpointError as err:
        assert "no checkpoint at" in str(err)
