"""A checkpoint of ``train`` evaluated on a test set: the loss, top-1/top-5 error and per-class accuracy.

    result = evaluate_checkpoint("runs/lenet5-mnist-...", dataset="fashion-mnist")
    print("\\n".join(result.lines()))

The data options default to those the run was trained with (``data_dir``, ``verify``, ``download``); the
device defaults to the CPU, whatever the run was trained on.
"""
from dataclasses import dataclass

import numpy as np

import minitorch_cnn as mt
from minitorch_cnn.data import DataLoader
from zoo import get_model

from .ablate import ablate
from .checkpoint import CheckpointError, load_checkpoint, resolve_path
from .config import check_dataset, data_options
from .data import check_channels, load_split, run_device
from .loop import evaluate
from .options import UsageError
from .provenance import dataset_files, describe, invocation_lines, provenance
from .report import per_class_lines


@dataclass
class Evaluation:
    """What ``evaluate_checkpoint`` found: the checkpoint's meta, the test set's name and classes, and
    ``loop.evaluate``'s result (loss, top1_err, top5_err, accuracy, images, confusion)."""
    path: str
    meta: dict
    dataset: str
    classes: list
    result: dict
    provenance: dict | None = None    # this evaluation's own (provenance.py): the arithmetic may differ

    def describe(self):
        position = self.meta["position"]
        done = f"{position['epoch']} epoch(s)"
        if position["batch"]:
            done += f" and {position['batch']} batch(es)"
        return f"{self.meta['model']} trained on {self.meta['dataset']} for {done}"

    def lines(self):
        r = self.result
        return [f"checkpoint     {self.path} ({self.describe()})",
                f"test set       {self.dataset}, {r['images']} images",
                f"test loss      {r['loss']:.4f}",
                f"top-1 error    {r['top1_err']:.2%}  (accuracy {r['accuracy']:.2%})",
                f"top-5 error    {r['top5_err']:.2%}",
                "per-class accuracy:", *per_class_lines(r["confusion"], self.classes),
                *self.provenance_lines()]

    def provenance_lines(self):
        """Where the weights were trained (one line per invocation: commit, BLAS kernel, ISA, threads) and
        where this evaluation ran: a different BLAS kernel can move the last digits of the error."""
        trained = invocation_lines(self.meta.get("invocations") or [])
        lines = ["provenance:", *(f"  trained   {line}" for line in trained or ["not recorded"])]
        if self.provenance is not None:
            lines.append(f"  evaluated {describe(self.provenance)}")
        return lines


def rebuild_model(meta, model_state, num_classes):
    """The checkpoint's model (with its ablation), its weights loaded."""
    if num_classes != meta["num_classes"]:
        raise UsageError(f"the model has {meta['num_classes']} classes but the test set has {num_classes}")
    model = get_model(meta["model"], in_channels=meta["in_channels"], num_classes=num_classes)
    # trained without these (--ablate), with the same adapted Linear layers (images are 32x32)
    ablate(model, meta["config"].get("ablate") or [], (meta["in_channels"], 32, 32))
    try:
        model.load_state_dict(model_state)
    except ValueError as err:
        raise CheckpointError(f"the checkpoint's weights do not fit {meta['model']}: {err}") from None
    return model


def check_finite(path, model_state=None, result=None):
    """CheckpointError naming ``path`` if its weights, or the test loss they give, are inf or NaN:
    numbers computed from them would be meaningless (NaN compares false, so it would even look right)."""
    for name, value in (model_state or {}).items():
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise CheckpointError(f"{path} holds inf or NaN weights ({name}): it comes from a run that "
                                  "diverged; evaluate an earlier checkpoint")
    if result is not None and not np.isfinite(result["loss"]):
        raise CheckpointError(f"{path} gives inf or NaN logits on this test set (test loss {result['loss']}): "
                              "its weights overflow; nothing to report")


def evaluate_checkpoint(checkpoint, dataset=None, batch_size=256, limit_test=None, device=None, **data):
    """Evaluate the checkpoint (file or run folder) on ``dataset`` (default: the one trained on)."""
    path = resolve_path(checkpoint)
    meta, model_state, _ = load_checkpoint(path)
    check_finite(path, model_state)
    dataset = meta["dataset"] if dataset is None else check_dataset(dataset)
    where = run_device(device or "cpu")
    with mt.using_device(where):
        test_set = load_split(dataset, "test", data_options(data, meta["config"]), limit_test)
        check_channels(meta["in_channels"], test_set)
        model = rebuild_model(meta, model_state, len(test_set.classes)).to(where)
        with np.errstate(all="ignore"):      # overflowing logits are reported by check_finite, in one line
            result = evaluate(model, DataLoader(test_set, batch_size), len(test_set.classes))
    check_finite(path, result=result)
    files = dataset_files(dataset, "test", data_options(data, meta["config"])["data_dir"])
    return Evaluation(str(path), meta, dataset, list(test_set.classes), result, provenance(where, files))
