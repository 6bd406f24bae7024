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
import math
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


class NonFiniteState(CheckpointError):
    """Refused to save: a weight or optimizer array is inf or NaN (the previous checkpoint stays)."""


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
    """Write model weights, optimizer state and ``meta`` (a JSON-able dict) to ``path`` atomically;
    NonFiniteState (and ``path`` untouched) if any of the arrays is inf or NaN."""
    arrays = {f"model/{k}": to_numpy(v) for k, v in model.state_dict().items()}
    optimizer_arrays, optimizer_meta = split_optimizer_state(optimizer.state_dict())
    arrays.update(optimizer_arrays)
    # Every save checks: a checkpoint full of NaN would replace the last good one and resume into nothing.
    bad = next((k for k, v in arrays.items() if v.dtype.kind == "f" and not np.isfinite(v).all()), None)
    if bad is not None:
        raise NonFiniteState(f"{bad} is inf or NaN")
    document = {"format": FORMAT, "version": VERSION, **meta, "optimizer": optimizer_meta}
    arrays["meta"] = np.frombuffer(json.dumps(document).encode("utf-8"), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def resolve_path(path):
    """A checkpoint file, given either the file or the run folder that holds it."""
    path = Path(path)
    return path / FILENAME if path.is_dir() else path


def check_members(path):
    """CheckpointError unless every member of the archive at ``path`` declares about the size it takes on
    disk, and each array's header a shape that fits in its member: zoo.train stores arrays uncompressed,
    so a compressed member ("zip bomb") or a header declaring gigabytes is refused before anything is read."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.file_size > info.compress_size + (1 << 16):
                raise CheckpointError(f"{path}: member {info.filename} declares {info.file_size} bytes from "
                                      f"{info.compress_size} on disk; zoo.train stores arrays uncompressed, so "
                                      "this is not one of its checkpoints")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(member)
            if math.prod(shape) * dtype.itemsize > info.file_size:
                raise CheckpointError(f"{path}: member {info.filename} declares an array of shape {shape} "
                                      f"({dtype}) larger than the {info.file_size} bytes it holds")


def _read(path, names):
    """The ``names`` (a callable choosing among the archive's names) of the checkpoint at ``path``, with
    its meta document: (meta, {name: array}); CheckpointError if unusable."""
    path = resolve_path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        check_members(path)
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
    validate_meta(path, meta)
    return meta, arrays


# What a meta document must hold, and of what type (a hand-edited or foreign one is refused as a whole,
# before anything is built or written from it).
META_TYPES = {"model": str, "dataset": str, "in_channels": int, "num_classes": int, "classes": list,
              "config": dict, "position": dict, "history": list, "invocations": list, "rng_state": (dict, list),
              "optimizer": dict}
POSITION_FIELDS = ("epoch", "batch", "loss_sum", "correct", "seen", "correct5", "seconds")
CONFIG_FIELDS = ("model", "dataset", "epochs", "batch_size", "optimizer", "lr", "seed", "out")


def _kind(value):
    return type(value).__name__


def validate_meta(path, meta):
    """CheckpointError naming the first field of ``meta`` that is missing or of the wrong type."""
    def bad(field, expected, value):
        found = "nothing" if value is _MISSING else f"{_kind(value)} {value!r:.40}"
        return CheckpointError(f"{path}: the checkpoint's {field} should be {expected}, found {found} "
                               "(edited by hand, or not written by zoo.train)")
    for key, types in META_TYPES.items():
        value = meta.get(key, _MISSING)
        if not isinstance(value, types) or isinstance(value, bool):
            raise bad(key, f"a {types.__name__ if isinstance(types, type) else 'dict'}", value)
    for key in ("in_channels", "num_classes"):
        if meta[key] < 1:
            raise bad(key, "a positive int", meta[key])
    for key in POSITION_FIELDS:
        value = meta["position"].get(key, _MISSING)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise bad(f"position.{key}", "a number >= 0", value)
    missing = [k for k in CONFIG_FIELDS if k not in meta["config"]]
    if missing:
        raise bad(f"config.{missing[0]}", "present", _MISSING)
    if not all(isinstance(row, dict) for row in meta["history"]):
        raise bad("history", "a list of epoch rows (dicts)", meta["history"])
    for key in ("param_groups", "scalars"):
        if not isinstance(meta["optimizer"].get(key), (list, dict)):
            raise bad(f"optimizer.{key}", "present", meta["optimizer"].get(key, _MISSING))


_MISSING = object()


def read_meta(path):
    """The meta document of a checkpoint alone (the weights stay on disk); CheckpointError if unusable."""
    return _read(path, lambda name: False)[0]


def load_checkpoint(path):
    """Read a checkpoint: ``(meta, model_state, optimizer_state_dict)``; CheckpointError if unusable."""
    meta, arrays = _read(path, lambda name: True)
    model_state = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    optimizer_arrays = {k: v for k, v in arrays.items() if k.startswith("optimizer/")}
    return meta, model_state, join_optimizer_state(optimizer_arrays, meta["optimizer"])
