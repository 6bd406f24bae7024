"""The training loop: one epoch, one test pass, and what stops them (Ctrl-C, a non-finite loss).

``zoo.run.train(config)`` drives these for a whole run; a notebook can use the same pieces::

    from zoo.run.loop import Position, evaluate, train_epoch
    position = Position()
    train_epoch(model, loader, optimizer, loss_fn, position)
    print(evaluate(model, test_loader, num_classes=10)["top1_err"])

A loss that stops being a finite number raises ``Diverged`` at that step: nothing after it is worth
training or saving. The check costs nothing extra, it reads the loss scalar the loop fetches anyway.

Ctrl-C is handled cooperatively: ``CtrlC`` turns the first SIGINT into a request that the loop honours
between two batches (raising ``StopTraining``), so the weights, optimizer state and random state it
leaves behind belong together and can be checkpointed. A second Ctrl-C stops at once.
"""
import itertools
import math
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

from minitorch_cnn import Tensor, no_grad
from minitorch_cnn import functional as F
from minitorch_cnn.device import device_of, get_array_module, get_default_device, to_numpy
from minitorch_cnn.nn import fold_batch_norm, fuse_batch_norm_activation

# ----------------------------------------------------------------------------- interruption

class StopTraining(Exception):
    """Raised between two batches after a Ctrl-C: the state is consistent and can be saved."""


class CtrlC:
    """Context manager: the first Ctrl-C (SIGINT) or SIGTERM asks the loop to stop after the current batch;
    a second one raises KeyboardInterrupt at once. SIGTERM is how schedulers (Slurm, Kubernetes, Dask) and
    ``kill`` stop a job, so it gets the same chance to save. ``signum`` is the first signal received (None
    if none). Signal handlers only exist in the main thread; elsewhere this does nothing and Ctrl-C
    raises KeyboardInterrupt as usual."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested, self.signum = False, None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc_info):
        for s, previous in self._previous.items():
            signal.signal(s, previous if previous is not None else signal.SIG_DFL)
        self._previous = {}

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested, self.signum = True, signum
        name = b"Ctrl-C" if signum == signal.SIGINT else b"SIGTERM"
        # os.write, not print: a handler that prints to a stream the loop is writing to can fail
        # with "reentrant call"; a raw write to file descriptor 2 cannot.
        os.write(2, b"\n" + name + b": stopping after this batch to save a checkpoint "
                    b"(press Ctrl-C again to stop at once)\n")

    def check(self):
        if self.requested:
            raise StopTraining


# ----------------------------------------------------------------------------- divergence

class Diverged(Exception):
    """Training produced a non-finite loss (or weights): it stops there, and nothing of it is saved."""

    def __init__(self, what, epoch, where, lr):
        super().__init__(f"training diverged: {what} at epoch {epoch}, {where}, with learning rate {lr:g}")


def check_finite_loss(value, position, batches, optimizer):
    """Raise Diverged if the loss of the batch just trained is inf or NaN."""
    if not math.isfinite(value):
        raise Diverged(f"the training loss is {value}", position.epoch + 1,
                       f"batch {position.batch + 1}/{batches}", optimizer.param_groups[0]["lr"])


def finite_state(model):
    """True when every parameter and buffer of ``model`` is finite (one pass, checked before saving)."""
    for value in model.state_dict().values():
        xp = get_array_module(value)
        if value.dtype.kind == "f" and not bool(xp.isfinite(value).all()):
            return False
    return True


# ----------------------------------------------------------------------------- where training stands

@dataclass
class Position:
    """How far training has come: ``epoch`` epochs completed, plus ``batch`` batches of the next one,
    with that epoch's running sums (so an interrupted epoch resumes with its statistics)."""
    epoch: int = 0
    batch: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    correct5: int = 0   # target among the five largest logits (top-5)
    seconds: float = 0.0

    def to_dict(self):
        return asdict(self)

    @property
    def loss(self):
        return self.loss_sum / max(self.seen, 1)

    @property
    def accuracy(self):
        return self.correct / max(self.seen, 1)

    @property
    def top5_error(self):
        return 1 - self.correct5 / max(self.seen, 1)

    @property
    def images_per_second(self):
        return self.seen / self.seconds if self.seconds > 0 else 0.0


def logits_of(output):
    """GoogLeNet returns (logits, aux1, aux2) in training mode; the logits are what we score."""
    return output[0] if isinstance(output, (tuple, list)) else output


def to_model_device(model, x):
    """The loader's host batch ``x`` as a Tensor on the device of ``model``'s parameters: the ONE
    host-to-device copy of a step (a model without parameters gets the default device)."""
    parameter = next(iter(model.parameters()), None)
    return Tensor(x, device=get_default_device() if parameter is None else device_of(parameter.data))


def _progress(total, initial, desc):
    return tqdm(total=total, initial=initial, desc=desc, unit="batch", leave=False, file=sys.stderr,
                dynamic_ncols=True, mininterval=0.5)


# ----------------------------------------------------------------------------- one epoch

def train_epoch(model, loader, optimizer, loss_fn, position, ctrl_c=None, desc="train"):
    """Train on the batches of epoch ``position.epoch`` that ``position.batch`` says are still to come.

    ``position`` is updated after every batch; a non-finite loss raises ``Diverged``. A KeyboardInterrupt
    that arrives between two batches becomes ``StopTraining`` (safe to save); one inside a training step
    is re-raised unchanged, because the optimizer may have updated only some of the parameters.
    Each batch norm whose output only a ReLU reads runs as one Function with it (nn/fuse.py), for this epoch.
    """
    model.train()
    loader.set_epoch(position.epoch)
    batches = itertools.islice(iter(loader), position.batch, None)
    stepping = False
    fusion = None
    with _progress(len(loader), position.batch, desc) as bar:
        try:
            last = time.perf_counter()
            for x, y in batches:
                stepping = True
                x = to_model_device(model, x)
                if fusion is None:   # found on the first batch (one eval forward; changes no state)
                    fusion = fuse_batch_norm_activation(model, x)
                output = model(x)
                loss = loss_fn(output, y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                loss_value, hits1, hits5 = batch_scores(loss, logits_of(output), y)
                check_finite_loss(loss_value, position, len(loader), optimizer)
                position.loss_sum += loss_value * len(y)
                position.correct += hits1
                position.correct5 += hits5
                position.seen += len(y)
                now = time.perf_counter()
                position.seconds += now - last  # the step and the wait for its batch
                last = now
                position.batch += 1
                stepping = False
                bar.update()
                bar.set_postfix_str(f"loss {position.loss:.4f}  acc {position.accuracy:.2%}  "
                                    f"{position.images_per_second:.0f} img/s", refresh=False)
                if ctrl_c is not None:
                    ctrl_c.check()
        except KeyboardInterrupt:
            if stepping:
                raise
            raise StopTraining from None
        finally:
            if fusion is not None:   # the model leaves as it came: a caller's own forward runs unfused
                fusion.remove()
    return position


# ----------------------------------------------------------------------------- the test pass

def topk_hits(logits, target, k):
    """How many rows of ``logits`` have ``target`` among their ``k`` largest entries, as a 0-d array on
    the logits' device (no transfer).

    Ties go to the lower class index, as in ``argmax`` (so top-1 agrees with the confusion matrix):
    the target's rank is the number of classes scored above it, plus those scored the same with a
    lower index. ``k`` larger than the number of classes counts every row. A row holding a NaN is never
    a hit: every comparison with NaN is false, so its target would otherwise rank first.
    """
    xp = get_array_module(logits)
    score = logits[xp.arange(len(target)), target][:, None]
    lower_index = xp.arange(logits.shape[1])[None, :] < target[:, None]
    rank = (logits > score).sum(axis=1) + ((logits == score) & lower_index).sum(axis=1)
    return ((rank < k) & ~xp.isnan(logits).any(axis=1)).sum()


def topk_correct(logits, target, k):
    """``topk_hits`` as a Python int."""
    return int(topk_hits(logits, target, k))


def batch_scores(loss, logits, y):
    """(loss, top-1 hits, top-5 hits) of one training batch as Python numbers.

    They are computed where the logits are and fetched in one transfer: on the GPU this is the step's
    only device-to-host round trip (the loss the progress bar shows and the divergence check reads).
    """
    xp = get_array_module(logits.data)
    target = F.loss.labels_on(xp, y)      # the device copy the loss made of these labels: no second transfer
    hits = [topk_hits(logits.data, target, k) for k in (1, 5)]
    values = to_numpy(xp.stack([loss.data.astype(xp.float64)] + [h.astype(xp.float64) for h in hits]))
    return float(values[0]), int(values[1]), int(values[2])


def evaluate(model, loader, num_classes, ctrl_c=None, desc="test"):
    """Loss, top-1/top-5 error and the confusion matrix (rows: true class, columns: predicted) of
    ``model`` on every batch of ``loader``, in eval mode and without recording a graph.

    The test loss is plain cross-entropy (no label smoothing, no auxiliary heads), so it compares
    across models and settings. Evaluating changes nothing, so an interrupt anywhere in here is safe.
    """
    model.eval()
    loss_sum, top5, n = 0.0, 0, 0
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    folding = None
    try:
        with no_grad(), _progress(len(loader), 0, desc) as bar:
            for x, y in loader:
                x = to_model_device(model, x)
                if folding is None:    # each batch norm folded into its conv for this pass (nn/fold.py)
                    folding = fold_batch_norm(model, x)
                    output = folding.output
                else:
                    output = model(x)
                logits = logits_of(output)
                loss_sum += F.cross_entropy(logits, y).item() * len(y)
                scores = to_numpy(logits.data)
                confusion += np.bincount(y * num_classes + scores.argmax(axis=1),
                                         minlength=num_classes ** 2).reshape(num_classes, num_classes)
                top5 += topk_correct(scores, y, 5)
                n += len(y)
                bar.update()
                if ctrl_c is not None:
                    ctrl_c.check()
    except KeyboardInterrupt:
        raise StopTraining from None
    finally:
        if folding is not None:        # the fold is a snapshot of these weights: training goes on unfolded
            folding.remove()
    correct = int(np.trace(confusion))
    return {"loss": loss_sum / max(n, 1), "top1_err": 1 - correct / max(n, 1), "top5_err": 1 - top5 / max(n, 1),
            "accuracy": correct / max(n, 1), "images": n, "confusion": confusion}

