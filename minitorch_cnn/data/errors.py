"""The exceptions the data layer raises.

All of them derive from ``DataError`` (a ``RuntimeError``), so a caller can
catch every data problem at once, or pick out the one it can act on:

- ``DatasetNotFoundError``: the files are not on disk and could not be downloaded.
- ``DataFormatError``: a file is there but its structure is wrong (bad magic
  number, truncated, gzip CRC failure, wrong shapes, labels out of range).
- ``ChecksumError``: a file is well-formed but is not the official file.
- ``DownloadError``: every mirror failed for one file.

Every message names the file, what was expected and what was found.
"""


class DataError(RuntimeError):
    """Base class of every error raised by ``minitorch_cnn.data``."""


class DatasetNotFoundError(DataError):
    """The dataset's files are missing and were not (or could not be) downloaded."""


class DataFormatError(DataError):
    """A data file exists but does not have the structure its format requires."""


class ChecksumError(DataError):
    """A data file's checksum does not match the official value."""


class DownloadError(DataError):
    """A file could not be fetched from any of its mirrors."""
