"""minitorch_cnn/files.py: the one atomic writer (checkpoints, downloads, reports, benchmark results,
figures). A reader sees the old file or the whole new one; a failed write leaves the old file and no
temporary file; the temporary file is created with O_EXCL, so a name planted in advance is never
followed."""
import os
import stat

import pytest

from minitorch_cnn import files


def leftovers(folder, keep):
    """Every name in ``folder`` but the ones we expect: temporary files a write left behind."""
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_atomic_write_replaces_the_whole_content(tmp_path):
    path = tmp_path / "state.bin"
    path.write_bytes(b"old content that is longer than the new one")
    returned = files.atomic_write(path, lambda f: f.write(b"new"))
    assert returned == path
    assert path.read_bytes() == b"new"          # no tail of the longer old content
    assert leftovers(tmp_path, {"state.bin"}) == []


def test_atomic_write_creates_a_missing_file_readable_as_usual(tmp_path):
    path = tmp_path / "fresh.bin"
    files.atomic_write(path, lambda f: f.write(b"\x00\x01"))
    assert path.read_bytes() == b"\x00\x01"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask   # as open() would make it, not private


def test_a_failing_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "report.json"
    path.write_text("old")

    def half_then_fail(f):
        f.write(b"half of the new")
        raise RuntimeError("disk full (pretend)")

    with pytest.raises(RuntimeError, match="disk full"):
        files.atomic_write(path, half_then_fail)
    assert path.read_text() == "old"
    assert leftovers(tmp_path, {"report.json"}) == []


def test_a_failing_write_of_a_new_file_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        files.atomic_write(tmp_path / "new.bin", lambda f: (_ for _ in ()).throw(KeyboardInterrupt))
    assert leftovers(tmp_path, set()) == []


def test_a_temporary_name_planted_in_advance_is_not_followed(tmp_path, monkeypatch):
    """Someone plants a link under the first temporary name the writer will draw, pointing at a file
    they want overwritten. O_EXCL refuses the existing name; the writer draws another one."""
    victim = tmp_path / "victim.txt"
    victim.write_text("must stay")
    path = tmp_path / "out.txt"
    tokens = iter(["planted0", "fresh001"])
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: next(tokens))
    planted = tmp_path / f".out.txt.tmp-{os.getpid()}-planted0"
    planted.symlink_to(victim)

    files.atomic_write_text(path, "written")

    assert victim.read_text() == "must stay"
    assert path.read_text() == "written"
    assert planted.is_symlink()                 # untouched, not removed either: it is not ours
    assert leftovers(tmp_path, {"victim.txt", "out.txt", planted.name}) == []


def test_text_and_bytes_helpers(tmp_path):
    text_path = files.atomic_write_text(tmp_path / "t.txt", "héllo\n")
    assert text_path.read_bytes() == "héllo\n".encode()        # UTF-8 by default
    files.atomic_write_text(text_path, "héllo", encoding="latin-1")
    assert text_path.read_bytes() == b"h\xe9llo"
    bytes_path = files.atomic_write_bytes(str(tmp_path / "b.bin"), b"\xff\x00")   # a str path works too
    assert bytes_path.read_bytes() == b"\xff\x00"
    assert leftovers(tmp_path, {"t.txt", "b.bin"}) == []


def test_fsync_folder_is_quiet_where_a_folder_cannot_be_opened(tmp_path):
    files.fsync_folder(tmp_path)                        # a real folder: fsynced
    files.fsync_folder(tmp_path / "does-not-exist")     # no error: best effort
