"""Extracting the CIFAR-10 archive: only the named regular files, each to its own name, inside the folder."""
import io
import tarfile

import pytest

from minitorch_cnn.data import DataFormatError
from minitorch_cnn.data.download import extract_members


def add(tar, name, data=b"", kind=tarfile.REGTYPE, target=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, target, len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def hostile_archive(path, outside):
    """Two wanted files plus members that try to write outside the folder or into a link."""
    with tarfile.open(path, "w:gz") as tar:
        add(tar, "cifar-10-batches-bin/data_batch_1.bin", b"first")
        add(tar, f"../../{outside.name}/escape.txt", b"relative escape")
        add(tar, str(outside / "absolute.txt"), b"absolute escape")
        add(tar, "cifar-10-batches-bin/link", kind=tarfile.SYMTYPE, target=str(outside))
        add(tar, "cifar-10-batches-bin/link/through_link.txt", b"through a link")
        add(tar, "cifar-10-batches-bin/test_batch.bin", b"second")


def test_extracts_only_the_wanted_files_and_nothing_outside(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "a" / "b" / "dest"           # ../../outside from here is tmp_path/a/outside, made below
    (tmp_path / "a" / "outside").mkdir(parents=True)
    archive = tmp_path / "hostile.tar.gz"
    hostile_archive(archive, outside)
    extract_members(archive, dest, ["cifar-10-batches-bin/data_batch_1.bin", "cifar-10-batches-bin/test_batch.bin"])
    assert sorted(p.name for p in dest.iterdir()) == ["data_batch_1.bin", "test_batch.bin"]
    assert (dest / "data_batch_1.bin").read_bytes() == b"first" and (dest / "test_batch.bin").read_bytes() == b"second"
    assert list(outside.iterdir()) == [] and list((tmp_path / "a" / "outside").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "hostile.tar.gz", "outside"]


def test_a_wanted_name_that_is_a_link_is_refused_as_missing(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the dataset")
    archive = tmp_path / "links.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        add(tar, "cifar-10-batches-bin/data_batch_1.bin", kind=tarfile.SYMTYPE, target=str(secret))
    with pytest.raises(DataFormatError, match=r"links.tar.gz: expected the archive to contain "
                                              r"\['cifar-10-batches-bin/data_batch_1.bin'\], they are missing"):
        extract_members(archive, tmp_path / "dest", ["cifar-10-batches-bin/data_batch_1.bin"])
    assert list((tmp_path / "dest").iterdir()) == []
