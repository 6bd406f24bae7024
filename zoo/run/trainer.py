"""``train(config)``: one training run, from its TrainConfig to a run folder, and how it ended.

    result = train(TrainConfig.new("lenet5", "mnist", epochs=2))
    result.status, result.exit_status, result.last["test_top1_err"]

The run folder (``config.out``) receives config.json, metrics.csv, curves.png, confusion_matrix.png/.csv and
checkpoint.npz (weights, optimizer, schedule, position and random state), rewritten after every epoch. A
run ends "done", "complete" (nothing left to train), "interrupted" (Ctrl-C: the checkpoint is saved at the
next batch boundary, or not at all if the step itself was cut or left a weight inf or NaN), "terminated"
(SIGTERM, as schedulers stop jobs: the same, exit 143) or "diverged" (a non-finite loss: the
checkpoint and metrics of the last good epoch stay as they were). Bad input raises UsageError, DataError,
CheckpointError or OSError before anything is trained.
"""
import shlex
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

import minitorch_cnn as mt
from minitorch_cnn.data import DataLoader
from zoo import get_model
from zoo.models.init import initialise

from .ablate import ablate
from .budget import Budget, BudgetGuard, BudgetSpent, budget_record, lr_at
from .checkpoint import FILENAME, CheckpointError, NonFiniteState, load_checkpoint, read_meta, save_checkpoint
from .data import check_channels, load_split, run_device
from .lock import RunLock
from .loop import CtrlC, Diverged, Position, StopTraining, evaluate, finite_state, train_epoch
from .plots import CONFUSION_PNG, CURVES_PNG, plot_confusion, plot_curves
from .provenance import dataset_files, provenance
from .recipe import make_loss, make_optimizer, make_scheduler
from .report import (
    CONFUSION_CSV,
    epoch_summary,
    read_confusion_csv,
    write_confusion_csv,
    write_json,
    write_metrics_csv,
)

STOPPED = {"budget": "the end of its time", "schedule end": "the end of its schedule",
           "epochs": "its last epoch (--epochs)"}
EXIT_STATUS = {"done": 0, "complete": 0, "diverged": 3, "interrupted": 130, "terminated": 143}   # 128 + signal


@dataclass
class TrainResult:
    """How a run ended: ``status`` (a key of EXIT_STATUS), the one-line ``message`` printed on stderr for
    interrupted and diverged runs, the metrics ``history`` (one row per completed epoch), the folder."""
    status: str
    out: Path
    history: list = field(default_factory=list)
    message: str = ""

    @property
    def exit_status(self):
        return EXIT_STATUS[self.status]

    @property
    def last(self):
        return self.history[-1] if self.history else None


class Run:
    """A model, its optimizer and schedule, the data loaders, and where training stands."""

    def __init__(self, config, train_set, test_set, device, full_test_set=None):
        self.config, self.out, self.classes = config, Path(config.out), train_set.classes
        recipe = config.to_dict()
        mt.manual_seed(config.seed)   # initialisation and dropout draw from this generator
        self.model = get_model(config.model, in_channels=config.in_channels, num_classes=config.num_classes)
        initialise(self.model, config.init)    # --init: the builder's default, or Kaiming for every conv
        # After building, so an ablated model starts from the same initial weights as the whole one.
        self.notes = []     # a Linear layer the ablation had to adapt (ablate.py), printed and in config.json
        ablate(self.model, config.ablate, tuple(train_set.images.shape[1:]), self.notes)
        self.model.to(device)
        self.optimizer = make_optimizer(list(self.model.parameters()), recipe)
        self.scheduler = make_scheduler(self.optimizer, recipe)
        self.loss_fn = make_loss(recipe)
        # The order and augmentation of epoch e depend only on (seed, e): see DataLoader.
        self.train_loader = DataLoader(train_set, config.batch_size, shuffle=True, seed=config.seed,
                                       augment=config.augment)
        self.test_loader = DataLoader(test_set, config.batch_size)
        # A budgeted run's last test pass is over the whole test set, whatever --limit-test says.
        self.full_test_loader = self.test_loader if full_test_set is None else DataLoader(full_test_set,
                                                                                          config.batch_size)
        self.final_test_images = len(self.full_test_loader.dataset)
        self.position, self.history, self.invocations = Position(), [], []
        self.budget = None if config.time_budget is None else Budget(config.time_budget)
        if self.budget is not None:      # the budget's schedule runs per step (budget.py), not per epoch
            self.scheduler = None

    @property
    def checkpoint_path(self):
        return self.out / FILENAME

    def restore(self, meta, model_state, optimizer_state):
        """Continue from a checkpoint: weights, optimizer state, position, history, schedule, RNG."""
        try:
            self.model.load_state_dict(model_state)
            self.optimizer.load_state_dict(optimizer_state)
        except (ValueError, KeyError, TypeError) as err:
            raise CheckpointError(f"{self.checkpoint_path} does not fit this model: {err}") from None
        if not finite_state(self.model):   # not written by this tool's save (it refuses); do not blame the lr
            raise CheckpointError(f"{self.checkpoint_path} holds inf or NaN weights; nothing to resume from")
        self.position = Position(**meta["position"])
        self.history, self.invocations = meta["history"], meta["invocations"]
        self.scheduler = make_scheduler(self.optimizer, self.config.to_dict(), self.position.epoch)
        if self.budget is not None:
            self.budget, self.scheduler = Budget.from_dict(meta.get("budget"), self.config.time_budget), None
            self.set_lr(lr_at(self.config.to_dict(), self.steps, self.budget.schedule_steps))
        mt.set_rng_state(meta["rng_state"])  # last: building the model drew from the generator

    def save(self):
        c = self.config
        meta = {"model": c.model, "dataset": c.dataset, "in_channels": c.in_channels, "num_classes": c.num_classes,
                "classes": list(self.classes), "config": c.to_dict(), "position": self.position.to_dict(),
                "history": self.history, "invocations": self.invocations, "rng_state": mt.get_rng_state(),
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                "budget": None if self.budget is None else self.budget.to_dict(),
                "saved_at": datetime.now().isoformat(timespec="seconds")}
        save_checkpoint(self.checkpoint_path, self.model, self.optimizer, meta)

    def write_config(self, invocation, data_files=()):
        """config.json: the configuration, and every invocation that trained this run: its command line and
        its provenance (commit, BLAS kernel, CPU, threads, versions, the sha256 of ``data_files``; see
        provenance.py), so a run resumed across commits or machines lists each. The checkpoint's meta
        carries the same invocations."""
        record = provenance(self.config.device, data_files)
        self.invocations.append({"argv": list(invocation), "started": datetime.now().isoformat(timespec="seconds"),
                                 "from_epoch": self.position.epoch, "from_batch": self.position.batch,
                                 "provenance": record})
        self.write_config_json()

    def write_config_json(self):
        """config.json: the configuration, the invocations, the versions and, once done, the budget's record."""
        document = {**self.config.to_dict(), "invocations": self.invocations,
                    "versions": self.invocations[-1]["provenance"]["versions"]}
        if self.notes:
            document["ablation_adapted"] = self.notes
        if self.budget is not None and self.budget.stopped:
            document["budget"] = budget_record(self.budget, self.position, self.steps, self.images_seen,
                                               len(self.train_loader.dataset), self.final_test_images)
        write_json(self.out / "config.json", document)

    # ---- counting (every epoch has len(train_loader) steps)

    @property
    def steps(self):
        return self.position.epoch * len(self.train_loader) + self.position.batch

    @property
    def images_seen(self):
        return self.position.epoch * len(self.train_loader.dataset) + self.position.seen

    def set_lr(self, lr):
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def after_step(self):
        """After every step of a budgeted run: the next step's learning rate (metrics.csv's lr of a budgeted
        run is the rate after the row's last step: 0 at the schedule's end); BudgetSpent when its time or
        schedule is spent."""
        try:
            self.budget.after_step(self.steps, self.position, self.config.epochs * len(self.train_loader))
        finally:
            self.set_lr(lr_at(self.config.to_dict(), self.steps, self.budget.schedule_steps))

    def finish_epoch(self, test, seconds):
        """Record the epoch's metrics, move to the next epoch, step the schedule; return the row."""
        p = self.position
        row = {"epoch": p.epoch + 1, "lr": self.optimizer.param_groups[0]["lr"],
               "train_loss": p.loss, "train_acc": p.accuracy, "train_top5_err": p.top5_error, "test_loss": test["loss"],
               "test_acc": test["accuracy"], "test_top1_err": test["top1_err"], "test_top5_err": test["top5_err"],
               "epoch_seconds": seconds, "train_images_per_s": p.images_per_second,
               "steps": self.steps, "images_seen": self.images_seen}
        self.history.append(row)
        if self.budget is not None and p.batch < len(self.train_loader):
            return row          # a budget stopped inside the epoch: the checkpoint keeps its position
        if self.budget is not None:
            self.budget.spent_s += p.seconds
        self.position = Position(epoch=p.epoch + 1)
        if self.scheduler is not None:
            self.scheduler.step()
        return row

    def write_reports(self, test):
        """Metrics and curves after every epoch; the confusion matrix as CSV too, and drawn after the last."""
        title = f"{self.config.model} on {self.config.dataset}"
        write_metrics_csv(self.out / "metrics.csv", self.history)
        write_confusion_csv(self.out / CONFUSION_CSV, test["confusion"], self.classes)
        plot_curves(self.out / CURVES_PNG, self.history, title)
        if self.finished:
            plot_confusion(self.out / CONFUSION_PNG, test["confusion"], self.classes,
                           f"{title}: test, epoch {self.history[-1]['epoch']}")

    def repair_reports(self):
        """metrics.csv and curves.png as the checkpoint's history says, if a kill between the checkpoint and
        these writes left them behind (or a run was killed while drawing its plots)."""
        path = self.out / "metrics.csv"
        before = path.read_text() if path.is_file() else None
        write_metrics_csv(path, self.history)
        title = f"{self.config.model} on {self.config.dataset}"
        if self.history and (before != path.read_text() or not (self.out / CURVES_PNG).is_file()):
            plot_curves(self.out / CURVES_PNG, self.history, title)
        confusion = read_confusion_csv(self.out / CONFUSION_CSV, len(self.classes))
        if self.finished and confusion is not None \
                and not (self.out / CONFUSION_PNG).is_file():    # killed while drawing the last figures
            plot_confusion(self.out / CONFUSION_PNG, confusion, self.classes,
                           f"{title}: test, epoch {self.history[-1]['epoch']}")

    @property
    def finished(self):
        """All epochs done, or the time budget spent (budget.py)."""
        return self.position.epoch >= self.config.epochs or bool(self.budget and self.budget.stopped)

    def train(self, ctrl_c):
        """Train until ``config.epochs`` epochs are complete, checkpointing after each; with a time budget,
        until it is spent (then the last test pass is over the whole test set)."""
        epochs = self.config.epochs
        guard = ctrl_c if self.budget is None else BudgetGuard(ctrl_c, self)
        while not self.finished:
            epoch, stop = self.position.epoch, None
            if self.position.batch < len(self.train_loader):
                try:
                    train_epoch(self.model, self.train_loader, self.optimizer, self.loss_fn, self.position,
                                guard, desc=f"epoch {epoch + 1}/{epochs}")
                except BudgetSpent as spent:
                    stop = spent.reason
            if self.budget is not None and epoch + 1 == epochs:
                stop = stop or "epochs"
            self.test_epoch(ctrl_c, self.full_test_loader if stop else self.test_loader, stop)

    def test_epoch(self, ctrl_c, loader, stop=None):
        """The test pass after an epoch (or the budget's last step: ``stop`` says why), its row, the
        checkpoint and the reports. The budget is marked spent only once its last test pass is saved
        (a Ctrl-C in that pass resumes into it)."""
        epoch, epochs = self.position.epoch, self.config.epochs
        started = time.perf_counter()
        test = evaluate(self.model, loader, self.config.num_classes, ctrl_c, desc=f"test {epoch + 1}/{epochs}")
        finite = finite_state(self.model)
        if not (np.isfinite(test["loss"]) and finite):                     # never save non-finite weights
            what = f"the test loss is {test['loss']}" if finite else "a weight is inf or NaN"
            raise Diverged(what, epoch + 1, "after its last batch", self.optimizer.param_groups[0]["lr"])
        if stop is not None:
            self.budget.stopped = stop
        row = self.finish_epoch(test, self.position.seconds + time.perf_counter() - started)
        self.save()
        if self.budget is not None and self.budget.stopped:
            self.write_config_json()          # with the budget's record
        self.write_reports(test)
        print(epoch_summary(row, epochs), flush=True)
        ctrl_c.check()


# ----------------------------------------------------------------------------- train(config)

def prepare(config, device):
    """The data, the model and, for a resumed run, its checkpoint's state: a Run ready to train."""
    checkpoint = load_checkpoint(Path(config.out) / FILENAME) if config.resume else None
    train_set = load_split(config.dataset, "train", config.to_dict(), config.limit_train)
    test_set = load_split(config.dataset, "test", config.to_dict(), config.limit_test)
    if checkpoint is not None:
        check_channels(checkpoint[0]["in_channels"], train_set)
    config.in_channels, config.num_classes = train_set.in_channels, len(train_set.classes)
    full_test_set = None
    if config.time_budget is not None and config.limit_test is not None:
        full_test_set = load_split(config.dataset, "test", config.to_dict(), None)
    run = Run(config, train_set, test_set, device, full_test_set)
    run.data_files = [path for split in ("train", "test")
                      for path in dataset_files(config.dataset, split, config.data_dir)]
    if checkpoint is not None:
        run.restore(*checkpoint)
    return run


def train(config, invocation=()):
    """Run ``config`` (a TrainConfig) to its last epoch; returns a TrainResult. ``invocation`` is the
    command line recorded in config.json (what a person would type to run it again)."""
    device = run_device(config.device)
    with mt.using_device(device), mt.using_config("allow_tf32", config.tf32):
        run = prepare(config, device)
        run.out.mkdir(parents=True, exist_ok=True)
        with RunLock(run.out):    # one run per folder: a second one is refused, naming this process
            if config.resume:
                run.repair_reports()
            if run.finished:
                print(f"{run.checkpoint_path} has already completed {run.position.epoch} epoch(s); "
                      f"pass --epochs N with N > {run.position.epoch} to train further" if run.budget is None
                      else f"{run.checkpoint_path} has finished its {config.time_budget:g}-minute time budget "
                           f"(stopped: {run.budget.stopped}); nothing left to train")
                return TrainResult("complete", run.out, run.history)
            run.write_config(invocation, run.data_files)
            for note in run.notes:
                print(note)
            print(f"{config.model} on {config.dataset}: {len(run.train_loader.dataset)} training and "
                  f"{len(run.test_loader.dataset)} test images, {config.epochs} epoch(s); run folder {run.out}",
                  flush=True)
            result = train_guarded(run)
    if result.message:
        print(("error: " if result.status == "diverged" else "") + result.message, file=sys.stderr)
    else:
        last = result.last
        print(f"done: test accuracy {last['test_acc']:.2%} (top-1 error {last['test_top1_err']:.2%}, "
              f"top-5 error {last['test_top5_err']:.2%}); run folder {run.out}")
        if run.budget is not None:
            b = run.budget
            print(f"time budget: stopped at {STOPPED[b.stopped]} after {run.steps} steps and {run.images_seen} images "
                  f"({run.images_seen / len(run.train_loader.dataset):.2f} epochs) in {b.spent(run.position) / 60:.2f} "
                  f"of {b.minutes:g} min; the last test pass covered all {run.final_test_images} test images")
    return result


def train_guarded(run):
    """``run.train`` with Ctrl-C or SIGTERM turned into a saved checkpoint and divergence into a kept last
    epoch. NumPy's overflow warnings are silenced: a diverging run reports itself in one line instead."""
    with CtrlC() as ctrl_c, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            run.train(ctrl_c)
        except StopTraining:
            return stopped(run, ctrl_c.signum)
        except KeyboardInterrupt:
            return TrainResult("interrupted", run.out, run.history,
                               f"interrupted in the middle of a step, not saved; {last_checkpoint(run)}")
        except Diverged as err:
            write_metrics_csv(run.out / "metrics.csv", run.history)   # the epochs before; the header if none
            return TrainResult("diverged", run.out, run.history, divergence_message(run, err))
    return TrainResult("done", run.out, run.history)


def stopped(run, signum):
    """Save at the batch boundary a Ctrl-C (or SIGTERM) stopped at: the TrainResult saying so."""
    status, how = ("terminated", "terminated (SIGTERM)") if signum == signal.SIGTERM else ("interrupted", "interrupted")
    try:
        run.save()
    except NonFiniteState as err:      # the last step diverged: keep what was saved before it
        return TrainResult(status, run.out, run.history,
                           f"{how}, not saved: a weight is inf or NaN ({err}), the last step diverged "
                           f"(try a lower --lr); {last_checkpoint(run)}")
    p = run.position
    return TrainResult(status, run.out, run.history, (
        f"{how}: saved {run.checkpoint_path} (after {p.epoch} epoch(s) and {p.batch} of the "
        f"{len(run.train_loader)} batches of the next); continue with: {resume_hint(run.config)}"))


def last_checkpoint(run):
    """What the run folder holds after a stop that saved nothing: the checkpoint (and how far it got) or none."""
    try:
        p = read_meta(run.checkpoint_path)["position"]
    except (CheckpointError, KeyError, TypeError):
        return "no checkpoint was written"
    return f"the last checkpoint is {run.checkpoint_path} ({p['epoch']} epoch(s) and {p['batch']} batch(es))"


def resume_hint(c):
    return f"python -m zoo.train {c.model} {c.dataset} --out {shlex.quote(c.out)} --resume"


def divergence_message(run, err):
    """One line: where training diverged, a lower learning rate to try, and what was kept."""
    kept = (f"{run.checkpoint_path} and metrics.csv still hold epoch {run.history[-1]['epoch']}"
            if run.history else last_checkpoint(run) if run.checkpoint_path.exists()
            else "no epoch completed, so no checkpoint was written")
    lr = run.config.lr   # what --lr set; the schedule may have lowered it by the failing step
    return f"{err}; try a lower --lr than {lr:g} (e.g. {lr / 10:g}) with a new --out; {kept}"
