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
Writing goes through ``minitorch_cnn.files.atomic_write`` (a temporary file beside it, fsync, rename): a
crash or a second Ctrl-C in the middle leaves the previous checkpoint intact, never half a file.
"""
import json
import zipfile
from pathlib import Path

import numpy as np

from minitorch_cnn.device import is_array, to_numpy
from minitorch_cnn.files import atomic_write

FORMAT = "minitorch_cnn-checkpoint"
VERSION = 1
FILENAME = "checkpoint.npz"


class CheckpointError(Exception):
    """A checkpoint is missing, unreadable, or not one this tool wrote."""


# ----------------------------------------------------------------------------- optimizer state

def split_optimizer_state(state_dict):
    """Split an optimizer ``state_dict`` into (arrays by flat key, JSON-able rest)."""
    arrays, scalars = {}, {}
    for index, entries in state_dict["state"].items():
        for key, value in entries.items():
            if is_array(value):
                arrays[f"optimizer/{index}/{key}"] = to_numpy(value)
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
    arrays = {f"model/{k}": to_numpy(v) for k, v in model.state_dict().items()}
    optimizer_arrays, optimizer_meta = split_optimizer_state(optimizer.state_dict())
    arrays.update(optimizer_arrays)
    document = {"format": FORMAT, "version": VERSION, **meta, "optimizer": optimizer_meta}
    arrays["meta"] = np.frombuffer(json.dumps(document).encode("utf-8"), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def resolve_path(path):
    """A checkpoint file, given either the file or the run folder that holds it."""
    path = Path(path)
    return path / FILENAME if path.is_dir() else path


def _read(path, names):
    """The ``names`` (a callable choosing among the archive's names) of the checkpoint at ``path``, with
    its meta document: (meta, {name: array}); CheckpointError if unusable."""
    path = resolve_path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:    # an .npz reads each array when asked
            arrays = {name: archive[name] for name in archive.files if name == "meta" or names(name)}
        meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a checkpoint written by zoo.train")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {meta.get('version')}, "
                              f"this tool reads version {VERSION}")
    return meta, arrays


def read_meta(path):
    """The meta document of a checkpoint alone (the weights stay on disk); CheckpointError if unusable."""
    return _read(path, lambda name: False)[0]


def load_checkpoint(path):
    """Read a checkpoint: ``(meta, model_state, optimizer_state_dict)``; CheckpointError if unusable."""
    meta, arrays = _read(path, lambda name: True)
    model_state = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    optimizer_arrays = {k: v for k, v in arrays.items() if k.startswith("optimizer/")}
    return meta, model_state, join_optimizer_state(optimizer_arrays, meta["optimizer"])
