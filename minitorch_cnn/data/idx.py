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
import struct
import zlib
from pathlib import Path

import numpy as np

from .errors import DataFormatError

UBYTE_TYPE_CODE = 0x08


def decompress(path, raw):
    """Return the content of ``raw`` (the bytes of ``path``), gunzipped if the name ends in .gz.

    gzip stores a CRC-32 and the length of the content in its trailer, so a
    flipped or missing byte is reported here rather than read as wrong pixels.
    """
    if not str(path).endswith(".gz"):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise DataFormatError(
            f"{path}: expected a valid gzip file, but decompressing failed ({err}). "
            "The file is corrupted or truncated; delete it so it can be downloaded again."
        ) from err


def parse_idx(content, path, ndim):
    """Parse IDX bytes into a read-only uint8 array with ``ndim`` dimensions."""
    expected_magic = (UBYTE_TYPE_CODE << 8) | ndim
    header_len = 4 + 4 * ndim
    if len(content) < header_len:
        raise DataFormatError(
            f"{path}: expected an IDX header of {header_len} bytes, but the content is only "
            f"{len(content)} bytes long (truncated?)"
        )
    (magic,) = struct.unpack(">I", content[:4])
    if magic != expected_magic:
        raise DataFormatError(
            f"{path}: expected IDX magic number 0x{expected_magic:08x} (uint8, {ndim}-D), "
            f"found 0x{magic:08x}; this is not the expected kind of IDX file"
        )
    shape = struct.unpack(f">{ndim}I", content[4:header_len])
    declared = int(np.prod(shape, dtype=np.int64))
    present = len(content) - header_len
    if present != declared:
        raise DataFormatError(
            f"{path}: the IDX header declares shape {shape}, i.e. {declared} data bytes, "
            f"but the file holds {present} data bytes (truncated or corrupted)"
        )
    return np.frombuffer(content, dtype=np.uint8, offset=header_len).reshape(shape)


def read_idx(path, ndim):
    """Read an IDX file (gzip-compressed or not) with structural checks only."""
    path = Path(path)
    return parse_idx(decompress(path, path.read_bytes()), path, ndim)

