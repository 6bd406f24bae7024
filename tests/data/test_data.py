"""Tests of the data layer: file formats, folder resolution, verification, downloads, DataLoader.

All tests use small generated files in the official formats and a loopback
HTTP server; none needs the network. Two tests at the end load the real
MNIST / Fashion-MNIST files when this machine has them and skip otherwise.
"""
import functools
import gzip
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from support.formats import write_cifar_binary, write_cifar_python, write_cifar_python_meta, write_idx_gz

from minitorch_cnn.data import (
    DATASETS,
    ChecksumError,
    DataFormatError,
    DataLoader,
    Dataset,
    DatasetNotFoundError,
    DownloadError,
    crop_flip,
    load_dataset,
    normalise,
    random_crop_flip,
    read_cifar_binary,
    read_cifar_python,
    read_idx,
)
from minitorch_cnn.data import datasets as datasets_module
from minitorch_cnn.data.cifar import restricted_loads
from minitorch_cnn.data.download import Checksum, digest, download_file, verify_checksum
from minitorch_cnn.data.registry import MNIST

IDX_NAMES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
             "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
SIZES = {"train": 30, "test": 12}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No test sees the user's data folders, the system folders, or a proxy."""
    monkeypatch.delenv("MINITORCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setattr(datasets_module, "SYSTEM_ROOTS", {})


# ----------------------------------------------------------------------------- generators

def make_idx(folder, seed=0, label_offset=0):
    """Write all four MNIST-style files into ``folder``; return {split: (images, labels)}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for split, (img_name, lbl_name) in IDX_NAMES.items():
        images = rng.integers(0, 256, (SIZES[split], 28, 28), dtype=np.uint8)
        labels = ((np.arange(SIZES[split]) + label_offset) % 10).astype(np.uint8)
        write_idx_gz(folder / img_name, images)
        write_idx_gz(folder / lbl_name, labels)
        out[split] = images, labels
    return out


def cifar_arrays(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def make_cifar(folder, kind="bin", per_batch=4, seed=0):
    """Write the 6 CIFAR-10 batch files (binary or python version); return {split: (images, labels)}."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix, write = (".bin", write_cifar_binary) if kind == "bin" else ("", write_cifar_python)
    parts = {"train": [], "test": []}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        x, y = cifar_arrays(per_batch, seed * 100 + i)
        write(folder / (name + suffix), x, y)
        parts["test" if name == "test_batch" else "train"].append((x, y))
    if kind == "py":
        write_cifar_python_meta(folder / "batches.meta", [f"c{i}" for i in range(10)])
    else:
        (folder / "batches.meta.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    return {s: tuple(np.concatenate(a) for a in zip(*p)) for s, p in parts.items()}


def padded(images28):
    out = np.zeros((len(images28), 1, 32, 32), np.uint8)
    out[:, 0, 2:30, 2:30] = images28
    return out


# ----------------------------------------------------------------------------- formats

def test_idx_roundtrip_and_header(tmp_path):
    arr = np.random.default_rng(1).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    write_idx_gz(tmp_path / "a.gz", arr)
    raw = gzip.decompress((tmp_path / "a.gz").read_bytes())
    assert raw[:16] == struct.pack(">IIII", 0x803, 5, 28, 28)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz", 3), arr)
    write_idx_gz(tmp_path / "l.gz", np.arange(7, dtype=np.uint8))
    assert gzip.decompress((tmp_path / "l.gz").read_bytes())[:8] == struct.pack(">II", 0x801, 7)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_load_idx_dataset_exact(tmp_path, name):
    data = make_idx(tmp_path / name)
    for split in ("train", "test"):
        ds = load_dataset(name, split, data_dir=tmp_path, download=False, verify="structure")
        assert ds.images.dtype == np.uint8 and ds.images.shape == (SIZES[split], 1, 32, 32)
        assert ds.labels.dtype == np.int64 and ds.in_channels == 1 and len(ds) == SIZES[split]
        np.testing.assert_array_equal(ds.images, padded(data[split][0]))
        np.testing.assert_array_equal(ds.labels, data[split][1])
        assert len(ds.classes) == 10 and len(ds.mean) == len(ds.std) == 1


@pytest.mark.parametrize("kind", ["bin", "py"])
def test_load_cifar_exact(tmp_path, kind):
    folder = tmp_path / ("cifar-10-batches-bin" if kind == "bin" else "cifar-10-batches-py")
    data = make_cifar(folder, kind)
    for split, n in (("train", 20), ("test", 4)):
        ds = load_dataset("cifar10", split, data_dir=tmp_path, download=False, verify="structure")
        assert ds.images.shape == (n, 3, 32, 32) and ds.images.dtype == np.uint8 and ds.in_channels == 3
        np.testing.assert_array_equal(ds.images, data[split][0])
        np.testing.assert_array_equal(ds.labels, data[split][1])
        assert ds.classes[0] == "airplane" and ds.mean == (0.4914, 0.4822, 0.4465)


def test_cifar_binary_record_layout(tmp_path):
    x, y = cifar_arrays(2, 3)
    write_cifar_binary(tmp_path / "b.bin", x, y)
    raw = (tmp_path / "b.bin").read_bytes()
    assert len(raw) == 2 * 3073 and raw[0] == y[0] and raw[1:1025] == x[0, 0].tobytes()  # label, then R plane
    assert raw[3073 + 1 + 2048:3073 + 3073] == x[1, 2].tobytes()                         # B plane last
    xs, ys = read_cifar_binary(tmp_path / "b.bin")
    np.testing.assert_array_equal(xs, x)
    np.testing.assert_array_equal(ys, y)


def test_cifar_pickle_like_python2(tmp_path):
    x, y = cifar_arrays(3, 4)
    write_cifar_python(tmp_path / "data_batch_1", x, y)
    raw = (tmp_path / "data_batch_1").read_bytes()
    assert raw[:2] == b"\x80\x02" and b"_codecs" not in raw and b"U\x04data" in raw  # SHORT_BINSTRING key
    batch = restricted_loads(raw)
    assert set(batch) == {b"batch_label", b"labels", b"data", b"filenames"}
    # numpy 1.x (and the official files) name the module numpy.core.multiarray: also allowed.
    old_style = raw.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    (tmp_path / "old").write_bytes(old_style)
    for path in (tmp_path / "data_batch_1", tmp_path / "old"):
        xs, ys = read_cifar_python(path)
        np.testing.assert_array_equal(xs, x)
        np.testing.assert_array_equal(ys, y)


def test_restricted_unpickler_refuses_os_system(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": Evil()}, protocol=2))
    with pytest.raises(DataFormatError, match=r"forbidden global '(posix|os|nt)\.system'") as info:
        read_cifar_python(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


# ----------------------------------------------------------------------------- folder layouts

@pytest.mark.parametrize("name,sub", [("mnist", ""), ("mnist", "mnist"), ("mnist", "MNIST/raw"),
                                      ("fashion-mnist", "fashion-mnist"), ("fashion-mnist", "")])
def test_idx_layouts(tmp_path, name, sub):
    data = make_idx(tmp_path / sub)
    ds = load_dataset(name, "test", data_dir=tmp_path, download=False, verify="structure")
    np.testing.assert_array_equal(ds.labels, data["test"][1])


@pytest.mark.parametrize("sub,kind", [("cifar-10-batches-bin", "bin"), ("cifar-10-batches-py", "py"),
                                      ("cifar10/cifar-10-batches-bin", "bin"),
                                      ("cifar10/cifar-10-batches-py", "py"), ("cifar10", "bin"), ("", "py")])
def test_cifar_layouts(tmp_path, sub, kind):
    data = make_cifar(tmp_path / sub, kind)
    ds = load_dataset("cifar10", "test", data_dir=tmp_path, download=False, verify="structure")
    np.testing.assert_array_equal(ds.images, data["test"][0])


def test_uncompressed_idx_accepted(tmp_path):
    data = make_idx(tmp_path)
    for name in IDX_NAMES["test"]:
        (tmp_path / name[:-3]).write_bytes(gzip.decompress((tmp_path / name).read_bytes()))
        (tmp_path / name).unlink()
    ds = load_dataset("mnist", "test", data_dir=tmp_path, download=False, verify="structure")
    np.testing.assert_array_equal(ds.labels, data["test"][1])


def test_resolution_order(tmp_path, monkeypatch):
    arg, env, cache = tmp_path / "arg", tmp_path / "env", tmp_path / "xdg-cache" / "minitorch_cnn"
    for offset, root in enumerate((arg, env, cache)):
        make_idx(root / "mnist", label_offset=offset)

    def first_label(**kw):
        return load_dataset("mnist", "test", download=False, verify="structure", **kw).labels[0]

    monkeypatch.setenv("MINITORCH_DATA", str(env))
    assert first_label(data_dir=arg) == 0      # explicit argument first
    assert first_label() == 1                  # then the environment variable
    monkeypatch.delenv("MINITORCH_DATA")
    assert first_label() == 2                  # then the per-user cache
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    make_idx(tmp_path / "home" / ".cache" / "minitorch_cnn" / "mnist", label_offset=3)
    assert first_label() == 3                  # ~/.cache without XDG_CACHE_HOME
    (env / "mnist" / IDX_NAMES["test"][1]).unlink()
    monkeypatch.setenv("MINITORCH_DATA", str(env))
    assert first_label() == 3                  # an incomplete folder is passed over


def test_system_folder_for_fashion(tmp_path, monkeypatch):
    make_idx(tmp_path / "usr-share" / "fashion-mnist", label_offset=5)
    monkeypatch.setattr(datasets_module, "SYSTEM_ROOTS", {"fashion-mnist": (tmp_path / "usr-share",)})
    ds = load_dataset("fashion-mnist", "test", data_dir=tmp_path / "empty", download=False, verify="structure")
    assert ds.labels[0] == 5
    with pytest.raises(DatasetNotFoundError):   # only Fashion-MNIST looks there
        load_dataset("mnist", "test", data_dir=tmp_path / "empty", download=False)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="mnist, fashion-mnist, cifar10"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="split"):
        load_dataset("mnist", "validation", data_dir=tmp_path)
    with pytest.raises(ValueError, match="verify"):
        load_dataset("mnist", data_dir=tmp_path, verify="none")
    assert DATASETS == ("mnist", "fashion-mnist", "cifar10")
    make_idx(tmp_path)
    ds = load_dataset("FASHION_MNIST", "test", data_dir=tmp_path, download=False, verify="structure")
    assert ds.name == "fashion-mnist"                       # names are case- and separator-tolerant


# ----------------------------------------------------------------------------- verification

def test_default_checksum_rejects_generated_file(tmp_path):
    make_idx(tmp_path)
    path = tmp_path / IDX_NAMES["test"][0]
    with pytest.raises(ChecksumError) as info:
        load_dataset("mnist", "test", data_dir=tmp_path, download=False)
    msg = str(info.value)
    assert str(path) in msg
    assert MNIST.checksums["t10k-images-idx3-ubyte"].file[0] in msg           # expected
    assert digest(path.read_bytes(), "sha256") in msg                          # found


def test_checksum_rejects_generated_cifar(tmp_path):
    make_cifar(tmp_path / "cifar-10-batches-py", "py")
    with pytest.raises(ChecksumError, match="test_batch.*md5|md5.*test_batch"):
        load_dataset("cifar10", "test", data_dir=tmp_path, download=False)


def test_verify_checksum_accepts_content_digest(tmp_path):
    content = b"idx content"
    raw = gzip.compress(content, mtime=123)  # a re-gzipped copy: other .gz bytes, same content
    check = Checksum("sha256", file=("f" * 64,), content=(digest(content, "sha256"),))
    verify_checksum(tmp_path / "x.gz", raw, check, content)          # accepted via the content digest
    with pytest.raises(ChecksumError, match="expected \\(content\\)") as info:
        verify_checksum(tmp_path / "x.gz", raw, check, b"other content")
    assert str(tmp_path / "x.gz") in str(info.value) and "f" * 64 in str(info.value)


@pytest.mark.parametrize("verify,error", [("structure", DataFormatError),
                                          ("checksum", (DataFormatError, ChecksumError))])
def test_flipped_byte_detected(tmp_path, verify, error):
    make_idx(tmp_path)
    path = tmp_path / IDX_NAMES["test"][0]
    raw = bytearray(path.read_bytes())
    raw[-6] ^= 0xFF  # inside the gzip trailer's CRC-32
    path.write_bytes(bytes(raw))
    with pytest.raises(error, match=str(path)):
        load_dataset("mnist", "test", data_dir=tmp_path, download=False, verify=verify)


def _write_gz(path, content):
    path.write_bytes(gzip.compress(content, compresslevel=1, mtime=0))


@pytest.mark.parametrize("content,match", [
    (struct.pack(">IIII", 0x803, 12, 28, 28) + bytes(11 * 784), "declares shape"),   # truncated
    (struct.pack(">II", 0x801, 12) + bytes(12), "magic number 0x00000803"),          # a labels file
    (struct.pack(">IIII", 0x803, 12, 20, 20) + bytes(12 * 400), "28x28"),            # wrong dims
    (b"\x00\x00", "header"),
])
def test_bad_idx_structure(tmp_path, content, match):
    make_idx(tmp_path)
    path = tmp_path / IDX_NAMES["test"][0]
    _write_gz(path, content)
    with pytest.raises(DataFormatError, match=match) as info:
        load_dataset("mnist", "test", data_dir=tmp_path, download=False, verify="structure")
    assert str(path) in str(info.value)


def test_truncated_gzip_and_label_problems(tmp_path):
    make_idx(tmp_path)
    images, labels = (tmp_path / n for n in IDX_NAMES["test"])
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(DataFormatError, match="gzip"):
        load_dataset("mnist", "test", data_dir=tmp_path, download=False, verify="structure")
    make_idx(tmp_path)
    write_idx_gz(labels, np.full(SIZES["test"], 10, np.uint8))
    with pytest.raises(DataFormatError, match=r"0\.\.9, found 10"):
        load_dataset("mnist", "test", data_dir=tmp_path, download=False, verify="structure")
    write_idx_gz(labels, np.zeros(SIZES["test"] - 1, np.uint8))
    with pytest.raises(DataFormatError, match=f"expected {SIZES['test']} labels"):
        load_dataset("mnist", "test", data_dir=tmp_path, download=False, verify="structure")


def test_bad_cifar_structure(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    make_cifar(folder, "bin")
    path = folder / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataFormatError, match="3073-byte") as info:
        load_dataset("cifar10", "test", data_dir=tmp_path, download=False, verify="structure")
    assert str(path) in str(info.value)
    folder = tmp_path / "py" / "cifar-10-batches-py"
    make_cifar(folder, "py")
    path = folder / "test_batch"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataFormatError, match="unpickling failed"):
        load_dataset("cifar10", "test", data_dir=tmp_path / "py", download=False, verify="structure")
    path.write_bytes(pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, protocol=4))
    with pytest.raises(DataFormatError, match=r"\(N, 3072\)"):
        load_dataset("cifar10", "test", data_dir=tmp_path / "py", download=False, verify="structure")


# ----------------------------------------------------------------------------- downloads

class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server serving tmp_path/www; yields (folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_file_success_and_fallback(tmp_path, server):
    www, url = server
    (www / "good").mkdir()
    (www / "good" / "f.bin").write_bytes(b"hello" * 1000)
    check = Checksum("sha256", file=(digest(b"hello" * 1000, "sha256"),))
    dest = tmp_path / "dl" / "f.bin"
    download_file([f"{url}/missing/f.bin", f"{url}/good/f.bin"], dest, check)  # 404, then the good mirror
    assert dest.read_bytes() == b"hello" * 1000
    assert os.listdir(dest.parent) == ["f.bin"]                                  # no temporary file left
    dest2 = tmp_path / "dl2" / "f.bin"
    download_file([(www / "good" / "f.bin").as_uri()], dest2, check)           # file:// works too
    assert dest2.read_bytes() == b"hello" * 1000


def test_download_checksum_mismatch_leaves_nothing(tmp_path, server):
    www, url = server
    (www / "f.bin").write_bytes(b"not the official bytes")
    dest = tmp_path / "dl" / "f.bin"
    with pytest.raises(DownloadError, match="sha256 mismatch") as info:
        download_file([f"{url}/f.bin", f"{url}/nothere.bin"], dest, Checksum("sha256", file=("0" * 64,)))
    assert "404" in str(info.value) and f"{url}/f.bin" in str(info.value)
    assert os.listdir(dest.parent) == []


def test_load_dataset_downloads(tmp_path, server):
    www, url = server
    data = make_idx(www / "mirror2")
    ds = load_dataset("mnist", "test", data_dir=tmp_path / "data", verify="structure",
                      mirrors=[f"{url}/mirror1/", f"{url}/mirror2"])
    np.testing.assert_array_equal(ds.labels, data["test"][1])
    assert sorted(os.listdir(tmp_path / "data" / "mnist")) == sorted(IDX_NAMES["test"])
    # With the default verification the generated files are refused and nothing is kept.
    with pytest.raises(DatasetNotFoundError, match="sha256 mismatch"):
        load_dataset("mnist", "test", data_dir=tmp_path / "data2", mirrors=[f"{url}/mirror2"])
    assert os.listdir(tmp_path / "data2" / "mnist") == []


def test_load_cifar_downloads_archive(tmp_path, server):
    www, url = server
    data = make_cifar(tmp_path / "src" / "cifar-10-batches-bin", "bin")
    with tarfile.open(www / "cifar-10-binary.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
    ds = load_dataset("cifar10", "train", data_dir=tmp_path / "data", verify="structure", mirrors=[url])
    np.testing.assert_array_equal(ds.images, data["train"][0])
    dest = tmp_path / "data" / "cifar10"
    assert sorted(os.listdir(dest)) == ["cifar-10-batches-bin"]           # archive removed after extraction
    assert len(os.listdir(dest / "cifar-10-batches-bin")) == 7


def test_no_network_error_message(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", "train", data_dir=tmp_path / "d", mirrors=["http://127.0.0.1:9/"])
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz" in msg and "train-labels-idx1-ubyte.gz" in msg
    assert str(tmp_path / "d" / "mnist") in msg and str(tmp_path / "xdg-cache" / "minitorch_cnn") in msg
    assert "Download failed" in msg and "http://127.0.0.1:9/train-images-idx3-ubyte.gz" in msg
    assert "Put the files in" in msg
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        load_dataset("cifar10", "test", data_dir=tmp_path / "d", download=False)


# ----------------------------------------------------------------------------- DataLoader

def toy(n=10, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return Dataset(rng.integers(0, 256, (n, channels, 32, 32), dtype=np.uint8), np.arange(n) % 10,
                   [str(i) for i in range(10)], (0.5,) * channels, (0.25,) * channels)


def collect(loader):
    return [(x.copy(), y.copy()) for x, y in loader]


def test_loader_batches_shapes_and_drop_last():
    ds = toy(10)
    batches = collect(DataLoader(ds, 4))
    assert [len(y) for _, y in batches] == [4, 4, 2] and len(DataLoader(ds, 4)) == 3
    x, y = batches[0]
    assert x.dtype == np.float32 and x.shape == (4, 3, 32, 32) and y.dtype == np.int64
    assert [len(y) for _, y in DataLoader(ds, 4, drop_last=True)] == [4, 4]
    assert len(DataLoader(ds, 4, drop_last=True)) == 2
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), ds.labels)  # unshuffled order


def test_loader_normalisation_values():
    images = np.zeros((2, 3, 32, 32), np.uint8)
    images[1] = 255
    ds = Dataset(images, [0, 1], "ab", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
    x, _ = next(iter(DataLoader(ds, 2)))
    mean, std = np.array(ds.mean), np.array(ds.std)
    np.testing.assert_allclose(x[0, :, 5, 5], -mean / std, rtol=1e-6)
    np.testing.assert_allclose(x[1, :, 5, 5], (1 - mean) / std, rtol=1e-6)
    mid = normalise(np.full((1, 1, 2, 2), 51, np.uint8), (0.1307,), (0.3081,))
    np.testing.assert_allclose(mid, (0.2 - 0.1307) / 0.3081, rtol=1e-6)


def test_loader_shuffle_reproducible_and_complete():
    ds = toy(23)
    a, b = DataLoader(ds, 5, shuffle=True, seed=7), DataLoader(ds, 5, shuffle=True, seed=7)
    a0, a1 = (np.concatenate([y for _, y in collect(a)]) for _ in range(2))
    b0 = np.concatenate([y for _, y in collect(b)])
    np.testing.assert_array_equal(a0, b0)                      # same seed, same epoch: same order
    assert not np.array_equal(a0, a1)                          # the next epoch differs
    assert sorted(a0) == sorted(a1) == sorted(ds.labels)       # every sample exactly once
    other = np.concatenate([y for _, y in collect(DataLoader(ds, 5, shuffle=True, seed=8))])
    assert not np.array_equal(a0, other)


def test_loader_resume_is_bitwise_identical():
    ds = toy(20)
    full = DataLoader(ds, 6, shuffle=True, seed=3, augment=True)
    collect(full)
    epoch1 = collect(full)
    resumed = DataLoader(ds, 6, shuffle=True, seed=3, augment=True, prefetch=False)
    resumed.set_epoch(1)
    for (xa, ya), (xb, yb) in zip(epoch1, collect(resumed), strict=True):
        assert xa.tobytes() == xb.tobytes() and np.array_equal(ya, yb)


def _reference_crop_flip(image, top, left, flip, pad=4):
    out = np.pad(image, ((0, 0), (pad, pad), (pad, pad)))[:, top:top + 32, left:left + 32]
    return out[:, :, ::-1] if flip else out


def test_crop_flip_on_known_image():
    image = (np.arange(3 * 32 * 32) % 251).astype(np.uint8).reshape(1, 3, 32, 32) + 1  # no zero pixels
    batch = np.repeat(image, 4, axis=0)
    out = crop_flip(batch, np.array([4, 0, 8, 4]), np.array([4, 0, 3, 4]), np.array([False, False, True, True]))
    np.testing.assert_array_equal(out[0], image[0])                          # centre crop = identity
    assert (out[1, :, :4, :] == 0).all() and (out[1, :, :, :4] == 0).all()   # shifted: zero border
    np.testing.assert_array_equal(out[1, :, 4:, 4:], image[0, :, :28, :28])
    np.testing.assert_array_equal(out[3], image[0, :, :, ::-1])              # centre + flip = mirror
    for i, (t, l, f) in enumerate([(4, 4, 0), (0, 0, 0), (8, 3, 1), (4, 4, 1)]):
        np.testing.assert_array_equal(out[i], _reference_crop_flip(image[0], t, l, f))


def test_random_crop_flip_matches_its_draws():
    batch = toy(16).images
    out = random_crop_flip(batch, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    top, left, flip = rng.integers(0, 9, 16), rng.integers(0, 9, 16), rng.random(16) < 0.5
    for i in range(16):
        np.testing.assert_array_equal(out[i], _reference_crop_flip(batch[i], top[i], left[i], flip[i]))
    assert out.dtype == np.uint8 and 0 < flip.sum() < 16


class ExplodingImages:
    """Images that fail when the second batch is gathered."""

    def __init__(self, images):
        self.images = images

    def __getitem__(self, index):
        if index.min() >= 4:
            raise RuntimeError("boom in worker")
        return self.images[index]


def test_worker_exception_reaches_consumer():
    ds = toy(12)
    ds.images = ExplodingImages(ds.images)
    it = iter(DataLoader(ds, 4))
    next(it)
    with pytest.raises(RuntimeError, match="boom in worker"):
        next(it)


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "DataLoader-prefetch" and t.is_alive()]


def test_abandoned_iteration_stops_worker():
    loader = DataLoader(toy(40), 2)
    for _ in loader:
        break
    assert _prefetch_threads() == []
    it = iter(loader)
    next(it)
    it.close()
    assert _prefetch_threads() == []


def test_limit_first_and_stratified(tmp_path):
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 0, 1, 2])
    ds = Dataset(np.zeros((10, 1, 32, 32), np.uint8), labels, "abc", (0.5,), (0.5,))
    np.testing.assert_array_equal(ds.limit(3).labels, [0, 0, 0])
    strat = ds.limit(6, stratified=True)
    assert np.bincount(strat.labels).tolist() == [2, 2, 2]
    np.testing.assert_array_equal(strat.labels, [0, 0, 1, 1, 2, 2])         # samples 0, 1, 4, 5, 6, 9
    make_idx(tmp_path)
    assert len(load_dataset("mnist", "train", data_dir=tmp_path, download=False,
                            verify="structure", limit=7)) == 7


def test_no_torch_import():
    code = ("import sys, minitorch_cnn.data\n"
            "assert not {'torch', 'torchvision'} & {m.split('.')[0] for m in sys.modules}")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


# ----------------------------------------------------------------------------- real data (optional)

def shared_data_dir():
    env = os.environ.get("MINITORCH_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


def test_real_mnist_checksums():
    folder = shared_data_dir() / "mnist"
    if not (folder / "train-images-idx3-ubyte.gz").is_file():
        print(f"real MNIST not found in {folder}")
        pytest.skip(f"real MNIST not found in {folder} (set MINITORCH_SHARED_DATA)")
    train = load_dataset("mnist", "train", data_dir=folder, download=False)
    test = load_dataset("mnist", "test", data_dir=folder, download=False)
    assert train.images.shape == (60000, 1, 32, 32) and len(test) == 10000
    assert np.bincount(test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert train.images[:, :, :2].max() == 0 and train.images[:, :, 2:30, 2:30].max() == 255


def test_real_mnist_regzipped_copy_accepted(tmp_path):
    """A re-gzipped official file (other .gz bytes, same content) passes via the content checksum."""
    folder = shared_data_dir() / "mnist"
    if not (folder / "t10k-labels-idx1-ubyte.gz").is_file():
        print(f"real MNIST not found in {folder}")
        pytest.skip(f"real MNIST not found in {folder} (set MINITORCH_SHARED_DATA)")
    for name in IDX_NAMES["test"]:
        _write_gz(tmp_path / name, gzip.decompress((folder / name).read_bytes()))
    assert (tmp_path / IDX_NAMES["test"][1]).read_bytes() != (folder / IDX_NAMES["test"][1]).read_bytes()
    assert len(load_dataset("mnist", "test", data_dir=tmp_path, download=False)) == 10000


def test_real_fashion_mnist_checksums(monkeypatch):
    folder = Path("/usr/share/datasets/fashion-mnist")
    if not (folder / "train-images-idx3-ubyte.gz").is_file():
        print(f"real Fashion-MNIST not found in {folder}")
        pytest.skip(f"real Fashion-MNIST not found in {folder} (apt-get install dataset-fashion-mnist)")
    monkeypatch.setattr(datasets_module, "SYSTEM_ROOTS", {"fashion-mnist": (folder.parent,)})
    train = load_dataset("fashion-mnist", "train", download=False)   # found via the system folder
    assert len(train) == 60000 and np.bincount(train.labels).tolist() == [6000] * 10
    assert len(load_dataset("fashion-mnist", "test", download=False)) == 10000
