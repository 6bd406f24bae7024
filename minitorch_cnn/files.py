"""Writing a file so that a reader sees the old file or the whole new one, never half of one.

    atomic_write(path, lambda f: np.savez(f, **arrays))      # bytes, through a callback
    atomic_write_text(path, json.dumps(document))             # text

The new content goes to a temporary file created beside ``path`` (same folder, so the rename cannot
cross filesystems) with ``O_EXCL | O_NOFOLLOW`` (two writers never share one temporary file, and a
name planted in advance, a symbolic link included, is refused rather than followed), is flushed to
disk (``fsync``), and then renamed over ``path`` (``os.replace``: atomic on POSIX and Windows; a link at
``path`` itself is replaced, never followed). The folder is fsynced last, so the rename
itself survives a power cut. A crash, a full disk or a second Ctrl-C at any point leaves the old
file intact and no temporary file behind.
"""
import os
import secrets
from pathlib import Path

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)   # POSIX; Windows has no symbolic links to plant this way


def atomic_write(path, write):
    """Create or replace ``path`` with what ``write(binary_file)`` writes; returns ``path``."""
    path = Path(path)
    while True:
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o666)
            break
        except FileExistsError:      # another writer's temporary file: draw another name
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)   # gone already after a successful rename
    fsync_folder(path.parent)
    return path


def atomic_write_text(path, text, encoding="utf-8"):
    """``atomic_write`` for a string."""
    return atomic_write(path, lambda f: f.write(text.encode(encoding)))


def atomic_write_bytes(path, data):
    """``atomic_write`` for bytes."""
    return atomic_write(path, lambda f: f.write(data))


def fsync_folder(folder):
    """Make renames inside ``folder`` durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
