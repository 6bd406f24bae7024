"""Read the two official CIFAR-10 file formats.

*Binary version* (``cifar-10-batches-bin/*.bin``): a plain sequence of
3073-byte records, each 1 label byte followed by 3072 pixel bytes: the red
32x32 plane, then green, then blue, each row-major. No parsing risk at all.

*Python version* (``cifar-10-batches-py/data_batch_N``, ``test_batch``): each
file is a pickle written by Python 2 holding a dict with ``data`` (a uint8
array of shape (10000, 3072), same pixel layout as above) and ``labels`` (a
list of ints). Unpickling can run arbitrary code, so we use a restricted
unpickler that only lets through the handful of numpy globals an array needs.

Both readers return ``(images, labels)``: uint8 (N, 3, 32, 32) and uint8 (N,).
The tests write small files in these formats with the writers in ``tests/support/formats.py``.
"""
import io
import pickle
from pathlib import Path

import numpy as np

from .errors import DataFormatError

RECORD_BYTES = 1 + 3 * 32 * 32
IMAGE_SHAPE = (3, 32, 32)


# --------------------------------------------------------------------- binary version

def parse_cifar_binary(raw, path):
    """Split binary-version bytes into (images (N,3,32,32), labels (N,)), both uint8 and read-only."""
    if len(raw) == 0 or len(raw) % RECORD_BYTES:
        raise DataFormatError(
            f"{path}: expected a whole number of {RECORD_BYTES}-byte CIFAR-10 records "
            f"(1 label byte + 3072 pixel bytes), found {len(raw)} bytes "
            f"({len(raw) // RECORD_BYTES} records + {len(raw) % RECORD_BYTES} extra bytes)"
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    # Read-only views into ``raw``: the caller concatenates batches, which copies anyway.
    return records[:, 1:].reshape(-1, *IMAGE_SHAPE), records[:, 0]


def read_cifar_binary(path):
    path = Path(path)
    return parse_cifar_binary(path.read_bytes(), path)


# --------------------------------------------------------------------- python version

def _latin1_encode(text, encoding="latin1"):
    """What ``_codecs.encode`` does in a protocol-2 pickle written by Python 3 (it stores bytes as a latin-1
    string plus this call): only that, so the table below can allow it without allowing ``_codecs``."""
    if encoding.replace("-", "").lower() != "latin1":
        raise pickle.UnpicklingError(f"forbidden call _codecs.encode(..., {encoding!r})")
    return text.encode("latin1")


def _numpy_globals():
    """The globals an ndarray pickle refers to, under both numpy 1.x and 2.x module names (and the bytes
    helper of Python 3's protocol 2)."""
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,   # written by numpy 1.x / Python 2
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # written by numpy 2.x
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that can only build dicts, lists, strings, numbers and numpy arrays.

    A pickle names every callable it needs as (module, name) and ``find_class``
    looks it up; a malicious file would name e.g. ``os.system``. We answer from
    a fixed table instead of importing anything, so no other global can ever be
    reached. Plain containers, strings and numbers need no globals at all.
    """

    ALLOWED = _numpy_globals()

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"forbidden global '{module}.{name}': CIFAR-10 batch files only contain "
                "numpy arrays, lists, strings and numbers"
            ) from None


def restricted_loads(raw):
    """Unpickle bytes with ``RestrictedUnpickler``.

    ``encoding='bytes'``: the official files were written by Python 2, whose
    ``str`` is a byte string; keeping them as ``bytes`` (keys become b'data')
    is what lets numpy rebuild the array's raw buffer correctly.
    """
    return RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()


def _get(batch, key):
    """Look up a key written by Python 2 (b'data') or by Python 3 ('data')."""
    if key.encode() in batch:
        return batch[key.encode()]
    return batch.get(key)


def parse_cifar_pickle(raw, path):
    """Unpickle a python-version batch into (images (N,3,32,32), labels (N,)), both uint8."""
    try:
        batch = restricted_loads(raw)
    except pickle.UnpicklingError as err:   # a forbidden global: refused, never run
        raise DataFormatError(f"{path}: refused to unpickle: {err}") from None
    except Exception as err:  # truncated or garbled pickles fail in many ways
        raise DataFormatError(f"{path}: expected a CIFAR-10 batch pickle, unpickling failed: {err!r}") from err
    if not isinstance(batch, dict):
        raise DataFormatError(f"{path}: expected a dict, found {type(batch).__name__}")
    data, labels = _get(batch, "data"), _get(batch, "labels")
    if not isinstance(data, np.ndarray) or labels is None:
        raise DataFormatError(
            f"{path}: expected keys 'data' (numpy array) and 'labels', found keys {sorted(map(repr, batch))}"
        )
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != RECORD_BYTES - 1:
        raise DataFormatError(
            f"{path}: expected 'data' of dtype uint8 and shape (N, 3072), found {data.dtype} {data.shape}"
        )
    labels = np.asarray(labels)
    if labels.shape != (data.shape[0],):
        raise DataFormatError(
            f"{path}: expected {data.shape[0]} labels (one per image), found shape {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise DataFormatError(f"{path}: label values must be small integers, found {labels.min()}..{labels.max()}")
    return data.reshape(-1, *IMAGE_SHAPE), labels.astype(np.uint8)


def read_cifar_python(path):
    path = Path(path)
    return parse_cifar_pickle(path.read_bytes(), path)
