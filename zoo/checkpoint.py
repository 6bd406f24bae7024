"""Checkpoints of a training run: one ``.npz`` file, no pickle, written atomically.

A checkpoint is an ordinary NumPy ``.npz`` archive (a zip of ``.npy`` files):

    model/<name>              every parameter and buffer, keys as in ``model.state_dict()``
    optimizer/<i>/<key>       every array of the optimizer's per-parameter state (parameter number i)
    meta                      uint8 bytes of a UTF-8 JSON document with everything else

``meta`` holds the format version, model name, dataset, ``in_channels``, class names, the run's
configuration, the position in training (``epoch``: epochs completed, ``batch``: batches of the next
epoch already trained, with that epoch's running sums), the metrics history, the state of
``minitorch_cnn.random``'s generator, the optimizer's parameter groups and scalar state (e.g. Adam's
step count), and the scheduler's state. JSON keeps Python floats and ints exactly, so nothing is
rounded on the way through.

Loading uses ``np.load(..., allow_pickle=False)``: a checkpoint cannot run code, wherever it came from.
Writing goes to a temporary file in the same folder, is flushed to disk (fsync) and then renamed over
the old checkpoint (``os.replace``, atomic on POSIX and Windows): a crash or a second Ctrl-C in the
middle leaves the previous checkpoint intact, never half a file.
"""
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from minitorch_cnn import backend

FORMAT = "minitorch_cnn-checkpoint"
VERSION = 1
FILENAME = "checkpoint.npz"


class CheckpointError(Exception):
    """A checkpoint is missing, unreadable, or not one this tool wrote."""


# ----------------------------------------------------------------------------- atomic files

def atomic_write(path, write):
    """Create ``path`` by calling ``write(file)`` on a temporary file, then renaming it into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_folder(path.parent)


def _fsync_folder(folder):
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
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


def atomic_write_text(path, text):
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


# ----------------------------------------------------------------------------- optimizer state

def split_optimizer_state(state_dict):
    """Split an optimizer ``state_dict`` into (arrays by flat key, JSON-able rest)."""
    arrays, scalars = {}, {}
    for index, entries in state_dict["state"].items():
        for key, value in entries.items():
            if backend.is_array(value):
                arrays[f"optimizer/{index}/{key}"] = backend.to_numpy(value)
            else:
                scalars.setdefault(str(index), {})[key] = value
    return arrays, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def join_optimizer_state(arrays, meta):
    """The inverse of ``split_optimizer_state``: a ``state_dict`` for ``Optimizer.load_state_dict``."""
    state = {int(i): dict(values) for i, values in meta["scalars"].items()}
    for name, value in arrays.items():
        _, index, key = name.split("/", 2)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


# ----------------------------------------------------------------------------- save and load

def save_checkpoint(path, model, optimizer, meta):
    """Write model weights, optimizer state and ``meta`` (a JSON-able dict) to ``path`` atomically."""
    arrays = {f"model/{k}": backend.to_numpy(v) for k, v in model.state_dict().items()}
    optimizer_arrays, optimizer_meta = split_optimizer_state(optimizer.state_dict())
    arrays.update(optimizer_arrays)
    document = {"format": FORMAT, "version": VERSION, **meta, "optimizer": optimizer_meta}
    arrays["meta"] = np.frombuffer(json.dumps(document).encode("utf-8"), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def resolve_path(path):
    """A checkpoint file, given either the file or the run folder that holds it."""
    path = Path(path)
    return path / FILENAME if path.is_dir() else path


def load_checkpoint(path):
    """Read a checkpoint: ``(meta, model_state, optimizer_state_dict)``; CheckpointError if unusable."""
    path = resolve_path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a checkpoint written by zoo.train")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {meta.get('version')}, "
                              f"this tool reads version {VERSION}")
    model_state = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    optimizer_arrays = {k: v for k, v in arrays.items() if k.startswith("optimizer/")}
    return meta, model_state, join_optimizer_state(optimizer_arrays, meta["optimizer"])
