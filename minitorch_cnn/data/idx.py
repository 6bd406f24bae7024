"""Read IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a tiny header followed by raw bytes:

    magic number   4 bytes, big-endian: 0x00 0x00 <type code> <number of dims>
    dims           one 4-byte big-endian unsigned int per dimension
    data           prod(dims) items, row-major

The official files use type code 0x08 (unsigned byte), so labels start with
0x00000801 (1-D) and images with 0x00000803 (3-D: count, rows, cols). They are
distributed gzip-compressed (``*.gz``).

Reading checks the structure fully: gzip CRC, magic number, and that the byte
count declared by the header is exactly the byte count present (which catches
truncated downloads). Checksums against the official files are a separate
layer (see ``download.py``), because generated test files can never match them.
"""
import gzip
import io
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from .errors import DataFormatError

UBYTE_TYPE_CODE = 0x08
# The most data bytes a header may declare: 100,000 images of 32x32 (the MNIST family holds 60,000 28x28
# training images). Checked before anything is read, so a header (or a gzip "bomb") declaring gigabytes
# costs nothing; decompression is streamed and stops at the declared size.
MAX_DATA_BYTES = 100_000 * 32 * 32


def _gzip_error(path, err):
    return DataFormatError(
        f"{path}: expected a valid gzip file, but decompressing failed ({err}). "
        "The file is corrupted or truncated; delete it so it can be downloaded again."
    )


def _open_content(path, raw):
    """A stream of the content of ``raw`` (the bytes of ``path``), gunzipped if the name ends in .gz."""
    return gzip.GzipFile(fileobj=io.BytesIO(raw)) if str(path).endswith(".gz") else io.BytesIO(raw)


def read_idx_stream(stream, path, ndim):
    """Read one IDX array of ``ndim`` dimensions from ``stream`` (a binary file object), checking the
    header before reading the data and reading only what it declares: (array, content bytes)."""
    expected_magic = (UBYTE_TYPE_CODE << 8) | ndim
    header_len = 4 + 4 * ndim
    header = stream.read(header_len)
    if len(header) < header_len:
        raise DataFormatError(
            f"{path}: expected an IDX header of {header_len} bytes, but the content is only "
            f"{len(header)} bytes long (truncated?)"
        )
    (magic,) = struct.unpack(">I", header[:4])
    if magic != expected_magic:
        raise DataFormatError(
            f"{path}: expected IDX magic number 0x{expected_magic:08x} (uint8, {ndim}-D), "
            f"found 0x{magic:08x}; this is not the expected kind of IDX file"
        )
    shape = struct.unpack(f">{ndim}I", header[4:])
    declared = math.prod(shape)         # Python ints: no int64 overflow
    if declared > MAX_DATA_BYTES:
        raise DataFormatError(f"{path}: the IDX header declares shape {shape}, i.e. {declared} data bytes, more "
                              f"than the {MAX_DATA_BYTES} any of these datasets holds (corrupted or hostile)")
    data = stream.read(declared)
    extra = stream.read(1)              # at the end of a gzip stream this also checks its CRC
    if len(data) != declared or extra:
        present = f"more than {declared}" if extra else str(len(data))
        raise DataFormatError(
            f"{path}: the IDX header declares shape {shape}, i.e. {declared} data bytes, "
            f"but the file holds {present} data bytes (truncated or corrupted)"
        )
    return np.frombuffer(data, dtype=np.uint8).reshape(shape), header + data


def load_idx(path, raw, ndim):
    """(array, content) of the IDX file ``path`` whose bytes on disk are ``raw``, decompressed as a stream."""
    try:
        with _open_content(path, raw) as stream:
            return read_idx_stream(stream, path, ndim)
    except (OSError, EOFError, zlib.error) as err:
        raise _gzip_error(path, err) from err


def read_idx(path, ndim):
    """Read an IDX file (gzip-compressed or not) with structural checks only."""
    path = Path(path)
    return load_idx(path, path.read_bytes(), ndim)[0]
