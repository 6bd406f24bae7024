"""One training run per run folder at a time: ``with RunLock(folder): ...``.

    with RunLock(Path("runs/r18")):          # UsageError naming the running process if it is held
        train ...

The lock is a file, ``<folder>/.lock``, created with ``O_CREAT | O_EXCL`` (exactly one of two racing runs
creates it) and holding the owner's process id. A run killed with ``kill -9`` leaves it behind: a lock whose
process no longer exists is stale, and is removed and taken. (A process id reused by an unrelated program
keeps the folder locked; the message names the file to delete in that case.) The lock is released by
removing the file when the run ends, however it ends short of ``kill -9``.

Taking the lock also removes the temporary files (``.<name>.tmp-<pid>-<token>``, see minitorch_cnn.files)
that a killed writer left in the folder: only the lock holder writes there, so any whose process is gone
is garbage.
"""
import os
import re
from pathlib import Path

from minitorch_cnn.files import NOFOLLOW

from .options import UsageError

LOCK_NAME = ".lock"
TEMPORARY = re.compile(r"^\..+\.tmp-(\d+)-[0-9a-f]+$")


def process_exists(pid):
    """True if a process ``pid`` runs (signal 0 checks without sending anything). A zombie — exited, not yet
    reaped by its parent — answers signal 0 too, but writes nothing: it does not count (Linux's /proc)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:      # exists, owned by someone else
        return True
    return not _zombie(pid)


def _zombie(pid):
    """True if ``pid`` has exited and waits to be reaped (state Z in /proc/PID/stat; False where unknown)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"      # the name in (...) may hold spaces
    except (OSError, IndexError):
        return False


def holder(folder):
    """The process id holding ``folder``'s lock, or None when no running process does."""
    pid = _owner(Path(folder) / LOCK_NAME)
    return pid if pid is not None and process_exists(pid) else None


def _owner(path):
    """The pid written in the lock file, or None if it is unreadable (half written, or just removed)."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class RunLock:
    """Context manager holding ``folder``'s lock file for the duration of a run."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.held = False

    def __enter__(self):
        for _ in range(3):       # a stale lock is removed, then created again: a second try suffices
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o644)
            except FileExistsError:
                pid = _owner(self.path)
                if pid is not None and pid != os.getpid() and process_exists(pid):
                    raise UsageError(f"{self.folder} is in use by another training run (process {pid}); "
                                     f"wait for it to end or choose another --out (if no such run exists, "
                                     f"delete {self.path})") from None
                if pid is None and self.path.exists():   # being written by a run starting this instant
                    raise UsageError(f"{self.folder} is in use by another training run (one taking the lock "
                                     f"this instant); choose another --out (or delete {self.path})") from None
                self.path.unlink(missing_ok=True)        # stale: its owner is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()}\n")
            self.held = True
            remove_stale_temporaries(self.folder)
            return self
        raise UsageError(f"could not lock {self.folder}: {self.path} keeps reappearing")

    def __exit__(self, *exc_info):
        if self.held and _owner(self.path) == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False


def remove_stale_temporaries(folder):
    """Delete the temporary files of writers that no longer run (a kill between create and rename)."""
    for path in Path(folder).iterdir():
        match = TEMPORARY.match(path.name)
        if match and not process_exists(int(match.group(1))) and not path.is_dir():
            path.unlink(missing_ok=True)
