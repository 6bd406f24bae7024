"""Writers of small files in the official dataset formats, for the tests only (the library only reads them).

``write_idx_gz``: MNIST's gzip-compressed IDX; ``write_cifar_binary``: CIFAR-10's binary batches;
``write_cifar_python`` / ``write_cifar_python_meta``: CIFAR-10's python batches, pickled the way Python 2
pickled them, so the tests exercise the exact opcodes (and the short list of globals) the real files hold.
``write_data_folder``: a whole data folder (MNIST, Fashion-MNIST, CIFAR-10) for the command-line tests.
"""
import gzip
import io
import pickle
import struct
from pathlib import Path

import numpy as np

from minitorch_cnn.data.cifar import IMAGE_SHAPE, RECORD_BYTES
from minitorch_cnn.data.idx import UBYTE_TYPE_CODE

# ----------------------------------------------------------------------------- IDX (MNIST)


def encode_idx(array):
    """The IDX bytes (header + data) of a uint8 array."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"IDX writer supports uint8 only, got {array.dtype}")
    magic = (UBYTE_TYPE_CODE << 8) | array.ndim
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def write_idx_gz(path, array):
    """Write ``array`` as a gzip-compressed IDX file, the layout of the official files.

    ``mtime=0`` makes the output deterministic, so tests can hash it.
    """
    Path(path).write_bytes(gzip.compress(encode_idx(array), mtime=0))


# ----------------------------------------------------------------------------- CIFAR-10

def _check_arrays(images, labels):
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"expected uint8 images of shape (N, 3, 32, 32), got {images.dtype} {images.shape}")
    if labels.shape != (len(images),):
        raise ValueError(f"expected {len(images)} labels, got shape {labels.shape}")
    return np.ascontiguousarray(images), labels.astype(np.uint8)


def write_cifar_binary(path, images, labels):
    """Write uint8 images (N,3,32,32) and labels (N,) as one binary-version batch file."""
    images, labels = _check_arrays(images, labels)
    records = np.empty((len(labels), RECORD_BYTES), dtype=np.uint8)
    records[:, 0] = labels
    records[:, 1:] = images.reshape(len(labels), -1)
    Path(path).write_bytes(records.tobytes())


class _Py2StylePickler(pickle._Pickler):
    """Writes ``bytes`` the way Python 2 wrote ``str`` (BINSTRING opcodes).

    Python 3 pickles bytes at protocol 2 as a call to ``_codecs.encode``; the official files, written
    by Python 2, contain plain byte strings instead.
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes_py2(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes_py2


def _py2_pickle(obj):
    buffer = io.BytesIO()
    _Py2StylePickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def write_cifar_python(path, images, labels, batch_label=b"generated batch"):
    """Write one python-version batch file, with bytes keys like the official ones."""
    images, labels = _check_arrays(images, labels)
    batch = {
        b"batch_label": batch_label,
        b"labels": [int(v) for v in labels],
        b"data": images.reshape(len(labels), -1),
        b"filenames": [b"generated_%06d.png" % i for i in range(len(labels))],
    }
    Path(path).write_bytes(_py2_pickle(batch))


def write_cifar_python_meta(path, label_names):
    """Write ``batches.meta`` as in the official python version."""
    meta = {b"num_cases_per_batch": 10000, b"label_names": [n.encode() for n in label_names], b"num_vis": 3072}
    Path(path).write_bytes(_py2_pickle(meta))


# ----------------------------------------------------------------------------- a data folder

MNIST_SIZES = {"train": 48, "test": 20}
IDX_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
             "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def write_mnist(folder, seed=0):
    """MNIST-format files where class k lights up rows 2k..2k+5, so a few steps learn something."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, (images_name, labels_name) in IDX_FILES.items():
        labels = (np.arange(MNIST_SIZES[split]) % 10).astype(np.uint8)
        images = rng.integers(0, 50, (MNIST_SIZES[split], 28, 28)).astype(np.uint8)
        for k in range(10):
            images[labels == k, 2 * k:2 * k + 6, 4:24] = 255
        write_idx_gz(folder / images_name, images)
        write_idx_gz(folder / labels_name, labels)


def write_cifar(folder, per_batch=4, seed=0):
    """The six batch files of the binary CIFAR-10 version (random pixels and labels)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        write_cifar_binary(folder / f"{name}.bin", images, rng.integers(0, 10, per_batch))


def write_data_folder(root):
    """``root`` with mnist/, fashion-mnist/ and cifar10/ in the official layouts; returns ``root``."""
    write_mnist(root / "mnist")
    write_mnist(root / "fashion-mnist", seed=1)
    write_cifar(root / "cifar10" / "cifar-10-batches-bin")
    return root
