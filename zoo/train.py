"""Train a zoo model on MNIST, Fashion-MNIST or CIFAR-10: ``python -m zoo.train MODEL DATASET [options]``.

    python -m zoo.train lenet5 mnist                      # the model's default recipe (see DEFAULTS)
    python -m zoo.train resnet18 cifar10 --epochs 5 --lr 0.05 --limit-train 5000
    python -m zoo.train resnet18 cifar10 --out runs/r18 --resume --epochs 10    # continue a run

Each epoch shows a progress bar (running loss, accuracy, images/s) and then one summary line. The run
folder (``--out``, default ``runs/<model>-<dataset>-<timestamp>``) receives:

    config.json            the exact configuration, defaults resolved
    metrics.csv            one row per epoch
    curves.png             loss, top-1 and top-5 error against epochs, train and test
    confusion_matrix.png   of the final test pass (confusion_matrix.csv: of the latest one)
    checkpoint.npz         weights, optimizer, schedule, position and random state (see zoo/checkpoint.py)

The checkpoint is rewritten at the end of every epoch and on Ctrl-C. ``--resume`` continues bitwise
exactly where it stopped, on the CPU: ``--epochs 2`` equals ``--epochs 1`` followed by
``--resume --epochs 2``. Errors in the input are one line on stderr and a non-zero exit. A loss that
becomes inf or NaN stops the run at that step (exit 3), leaving the checkpoint and metrics of the last
good epoch as they were.
"""
import shlex
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

import minitorch_cnn as mt
from minitorch_cnn import backend
from minitorch_cnn.data import DATASETS, DataError, DataLoader
from minitorch_cnn.data.registry import get_info

from . import MODELS, get_model
from .ablate import ablate, parse_names
from .checkpoint import FILENAME, CheckpointError, load_checkpoint, save_checkpoint
from .cli import (
    OneLineParser,
    UsageError,
    add_data_options,
    check_channels,
    data_config,
    load_split,
    natural_float,
    natural_int,
    positive_float,
    positive_int,
    select_device,
    unit_float,
)
from .report import (
    CONFUSION_CSV,
    CONFUSION_PNG,
    CURVES_PNG,
    epoch_summary,
    plot_confusion,
    plot_curves,
    write_confusion_csv,
    write_json,
    write_metrics_csv,
)
from .training import (
    OPTIMIZERS,
    SCHEDULES,
    STEP_GAMMA,
    CtrlC,
    Diverged,
    Position,
    StopTraining,
    evaluate,
    finite_state,
    make_loss,
    make_optimizer,
    make_scheduler,
    step_size,
    train_epoch,
)

# The recipe each model trains with when no option overrides it. LeNet-5 is tuned for MNIST-like data;
# the others follow the usual CIFAR-10 recipe: SGD with momentum 0.9, weight decay 5e-4, cosine schedule.
CIFAR_RECIPE = {"epochs": 30, "batch_size": 128, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9,
                "weight_decay": 5e-4, "schedule": "cosine", "label_smoothing": 0.0}
DEFAULTS = {
    "lenet5": {**CIFAR_RECIPE, "epochs": 10, "batch_size": 64},
    "alexnet": {**CIFAR_RECIPE, "lr": 0.01},      # no BatchNorm: a larger lr diverges
    "vgg16": dict(CIFAR_RECIPE),
    "googlenet": {**CIFAR_RECIPE, "aux_weight": 0.3},
    "mobilenet_v1": dict(CIFAR_RECIPE),
    "mobilenet_v2": dict(CIFAR_RECIPE),
    "resnet18": {**CIFAR_RECIPE, "lr": 0.1},
}
# With --optimizer other than the model's, the lr defaults to that optimizer's usual value instead.
OPTIMIZER_LR = {"sgd": 0.01, "adam": 1e-3, "adagrad": 1e-2, "adadelta": 1.0, "rmsprop": 1e-3}
WITH_MOMENTUM = ("sgd", "rmsprop")
# Options --resume may change; every other one must match the saved run.
RESUME_MAY_CHANGE = ("epochs", "device", "data_dir", "verify", "download")
EXIT_INTERRUPTED = 130
EXIT_DIVERGED = 3


# ----------------------------------------------------------------------------- the command line

def build_parser():
    p = OneLineParser(prog="python -m zoo.train", description="Train a zoo model on an image dataset.")
    p.add_argument("model", metavar="MODEL", help="one of: " + ", ".join(MODELS))
    p.add_argument("dataset", metavar="DATASET", help="one of: " + ", ".join(DATASETS))
    p.add_argument("--epochs", type=positive_int, help="total number of epochs")
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--lr", type=positive_float, help="learning rate")
    p.add_argument("--momentum", type=unit_float, help="sgd and rmsprop only")
    p.add_argument("--nesterov", action="store_true", default=None, help="sgd with momentum: Nesterov's variant")
    p.add_argument("--weight-decay", type=natural_float, help="L2 penalty")
    p.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule over the epochs")
    p.add_argument("--label-smoothing", type=unit_float)
    p.add_argument("--aux-weight", type=natural_float, help="GoogLeNet: weight of the auxiliary losses")
    p.add_argument("--main-weight", type=positive_float,
                   help="GoogLeNet: weight of the main loss (default 1; the course slides use 0.7 with aux 0.3)")
    p.add_argument("--no-augment", dest="augment", action="store_false", default=None,
                   help="CIFAR-10: no random crop and flip")
    p.add_argument("--limit-train", type=positive_int, help="train on N images (class-balanced)")
    p.add_argument("--ablate", type=parse_names, metavar="NAME[,NAME...]",
                   help="replace these modules (names as zoo.summary prints them) by an identity")
    p.add_argument("--seed", type=natural_int, help="seeds initialisation, dropout, shuffling, augmentation")
    add_data_options(p)
    p.add_argument("--out", help="run folder (default: runs/<model>-<dataset>-<timestamp>)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    return p


# ----------------------------------------------------------------------------- the configuration

def check_names(model, dataset):
    """The canonical model and dataset names; UsageError listing the valid ones."""
    if model not in MODELS:
        raise UsageError(f"unknown model {model!r}; valid models: {', '.join(MODELS)}")
    try:
        return model, get_info(dataset).name
    except ValueError:
        raise UsageError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(DATASETS)}") from None


def new_config(args, model, dataset, out):
    """Command-line options over the model's defaults: the complete configuration of a new run."""
    defaults = DEFAULTS[model]
    optimizer = args.optimizer or defaults["optimizer"]
    same_optimizer = optimizer == defaults["optimizer"]
    if args.momentum is not None and optimizer not in WITH_MOMENTUM:
        raise UsageError(f"--momentum applies to {' and '.join(WITH_MOMENTUM)} only, not {optimizer}")
    if args.nesterov and optimizer != "sgd":
        raise UsageError(f"--nesterov applies to sgd only, not {optimizer}")
    for name in ("aux_weight", "main_weight"):
        if getattr(args, name) is not None and model != "googlenet":
            print(f"warning: --{name.replace('_', '-')} only applies to googlenet; ignored for {model}",
                  file=sys.stderr)

    def pick(name, fallback):
        value = getattr(args, name)
        return fallback if value is None else value

    epochs = pick("epochs", defaults["epochs"])
    momentum = None  # adam, adagrad and adadelta have none
    if optimizer in WITH_MOMENTUM:
        momentum = pick("momentum", defaults["momentum"] if same_optimizer else 0.0)
    if args.nesterov and not momentum:
        raise UsageError("--nesterov needs a momentum > 0 (--momentum)")
    config = {
        "model": model, "dataset": dataset, "epochs": epochs,
        "batch_size": pick("batch_size", defaults["batch_size"]),
        "optimizer": optimizer,
        "lr": pick("lr", defaults["lr"] if same_optimizer else OPTIMIZER_LR[optimizer]),
        "momentum": momentum, "nesterov": bool(args.nesterov),
        "weight_decay": pick("weight_decay", defaults["weight_decay"]),
        "schedule": pick("schedule", defaults["schedule"]),
        "label_smoothing": pick("label_smoothing", defaults["label_smoothing"]),
        "aux_weight": pick("aux_weight", defaults["aux_weight"]) if model == "googlenet" else None,
        "main_weight": pick("main_weight", 1.0) if model == "googlenet" else None,
        "augment": dataset == "cifar10" and args.augment is not False,
        "limit_train": args.limit_train, "limit_test": args.limit_test,
        "seed": pick("seed", 0), "ablate": args.ablate or [], "out": str(out),
    }
    config.update(environment(args, config))
    if config["schedule"] == "step":
        config["step_size"], config["step_gamma"] = step_size(epochs), STEP_GAMMA
    return config


def environment(args, saved):
    """The options that may differ between a run and its resumption."""
    return {"epochs": args.epochs or saved.get("epochs"),
            "device": args.device or saved.get("device") or "cpu",
            **data_config(args, saved)}


def resumed_config(args, meta, model, dataset):
    """The saved configuration, after checking that the command line does not contradict it."""
    if (meta["model"], meta["dataset"]) != (model, dataset):
        raise UsageError(f"the checkpoint in {args.out} is for {meta['model']} on {meta['dataset']}, "
                         f"not {model} on {dataset}")
    saved = meta["config"]
    explicit = {k: v for k, v in vars(args).items()
                if v is not None and k in saved and k not in RESUME_MAY_CHANGE + ("model", "dataset", "out")}
    for name, value in explicit.items():
        if saved[name] != value:
            raise UsageError(f"--resume continues with the saved configuration: --{name.replace('_', '-')} "
                             f"{value} differs from the saved {saved[name]} (use a new --out to change it)")
    config = {**saved, **environment(args, saved), "out": str(args.out)}  # the folder may have moved
    if config["schedule"] == "step":
        config["step_size"] = step_size(config["epochs"])
    return config


# ----------------------------------------------------------------------------- one run

class Run:
    """A model, its optimizer and schedule, the data loaders, and where training stands."""

    def __init__(self, config, train_set, test_set, out):
        self.config, self.out, self.classes = config, Path(out), train_set.classes
        mt.manual_seed(config["seed"])   # initialisation and dropout draw from this generator
        self.model = get_model(config["model"], in_channels=config["in_channels"],
                               num_classes=config["num_classes"])
        # After building, so an ablated model starts from the same initial weights as the whole one.
        ablate(self.model, config.get("ablate") or [], tuple(train_set.images.shape[1:]))
        if config["device"] == "cuda":
            self.model.to("cuda")
        self.optimizer = make_optimizer(list(self.model.parameters()), config)
        self.scheduler = make_scheduler(self.optimizer, config)
        self.loss_fn = make_loss(config)
        # The order and augmentation of epoch e depend only on (seed, e): see DataLoader.
        self.train_loader = DataLoader(train_set, config["batch_size"], shuffle=True, seed=config["seed"],
                                       augment=config["augment"])
        self.test_loader = DataLoader(test_set, config["batch_size"])
        self.position, self.history, self.invocations = Position(), [], []

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
        self.position = Position(**meta["position"])
        self.history, self.invocations = meta["history"], meta["invocations"]
        self.scheduler = make_scheduler(self.optimizer, self.config, self.position.epoch)
        mt.set_rng_state(meta["rng_state"])  # last: building the model drew from the generator

    def save(self):
        meta = {"model": self.config["model"], "dataset": self.config["dataset"],
                "in_channels": self.config["in_channels"], "num_classes": self.config["num_classes"],
                "classes": list(self.classes), "config": self.config, "position": self.position.to_dict(),
                "history": self.history, "invocations": self.invocations, "rng_state": mt.get_rng_state(),
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                "saved_at": datetime.now().isoformat(timespec="seconds")}
        save_checkpoint(self.checkpoint_path, self.model, self.optimizer, meta)

    def write_config(self, argv):
        self.invocations.append({"argv": list(argv), "started": datetime.now().isoformat(timespec="seconds"),
                                 "from_epoch": self.position.epoch, "from_batch": self.position.batch})
        write_json(self.out / "config.json", {**self.config, "invocations": self.invocations,
                                              "versions": {"python": sys.version.split()[0],
                                                           "numpy": np.__version__,
                                                           "minitorch_cnn": mt.__version__}})

    def finish_epoch(self, test, seconds):
        """Record the epoch's metrics, move to the next epoch, step the schedule; return the row."""
        p = self.position
        row = {"epoch": p.epoch + 1, "lr": self.optimizer.param_groups[0]["lr"],
               "train_loss": p.loss, "train_acc": p.accuracy, "train_top5_err": p.top5_error, "test_loss": test["loss"],
               "test_acc": test["accuracy"], "test_top1_err": test["top1_err"], "test_top5_err": test["top5_err"],
               "epoch_seconds": seconds, "train_images_per_s": p.images_per_second}
        self.history.append(row)
        self.position = Position(epoch=p.epoch + 1)
        if self.scheduler is not None:
            self.scheduler.step()
        return row

    def write_reports(self, test):
        """Metrics and curves after every epoch; the confusion matrix as CSV too, and drawn after the last."""
        title = f"{self.config['model']} on {self.config['dataset']}"
        write_metrics_csv(self.out / "metrics.csv", self.history)
        write_confusion_csv(self.out / CONFUSION_CSV, test["confusion"], self.classes)
        plot_curves(self.out / CURVES_PNG, self.history, title)
        if self.position.epoch == self.config["epochs"]:
            plot_confusion(self.out / CONFUSION_PNG, test["confusion"], self.classes,
                           f"{title}: test, epoch {self.history[-1]['epoch']}")

    def train(self, ctrl_c):
        """Train until ``config['epochs']`` epochs are complete, checkpointing after each."""
        epochs = self.config["epochs"]
        while self.position.epoch < epochs:
            epoch = self.position.epoch
            if self.position.batch < len(self.train_loader):
                train_epoch(self.model, self.train_loader, self.optimizer, self.loss_fn, self.position,
                            ctrl_c, desc=f"epoch {epoch + 1}/{epochs}")
            started = time.perf_counter()
            test = evaluate(self.model, self.test_loader, self.config["num_classes"], ctrl_c,
                            desc=f"test {epoch + 1}/{epochs}")
            if not (np.isfinite(test["loss"]) and finite_state(self.model)):   # never save non-finite weights
                what = f"the test loss is {test['loss']}" if finite_state(self.model) else "a weight is inf or NaN"
                raise Diverged(what, epoch + 1, "after its last batch", self.optimizer.param_groups[0]["lr"])
            row = self.finish_epoch(test, self.position.seconds + time.perf_counter() - started)
            self.save()
            self.write_reports(test)
            print(epoch_summary(row, epochs), flush=True)
            ctrl_c.check()


# ----------------------------------------------------------------------------- main

def prepare(args):
    """Everything before training: names, configuration, checkpoint, device, data. Returns a Run."""
    model, dataset = check_names(args.model, args.dataset)
    if args.resume:
        if not args.out:
            raise UsageError("--resume needs --out DIR, the run folder to continue")
        meta, model_state, optimizer_state = load_checkpoint(Path(args.out) / FILENAME)
        config = resumed_config(args, meta, model, dataset)
    else:
        without = "".join(f"-without-{name}" for name in args.ablate or [])
        out = args.out or Path("runs") / f"{model}-{dataset}{without}-{datetime.now():%Y%m%d-%H%M%S}"
        if (Path(out) / FILENAME).exists():
            raise UsageError(f"{out} already holds a checkpoint; add --resume to continue it, "
                             "or choose another --out")
        config = new_config(args, model, dataset, out)
    select_device(config["device"])
    train_set = load_split(dataset, "train", config, config["limit_train"])
    test_set = load_split(dataset, "test", config, config["limit_test"])
    if args.resume:
        check_channels(meta["in_channels"], train_set)
    config["in_channels"], config["num_classes"] = train_set.in_channels, len(train_set.classes)
    run = Run(config, train_set, test_set, config["out"])
    if args.resume:
        run.restore(meta, model_state, optimizer_state)
    return run


def resume_hint(run):
    c = run.config
    return f"python -m zoo.train {c['model']} {c['dataset']} --out {shlex.quote(c['out'])} --resume"


def report_divergence(run, err):
    """One line: where training diverged, a lower learning rate to try, and what was kept."""
    write_metrics_csv(run.out / "metrics.csv", run.history)   # the epochs before; just the header if none
    kept = (f"{run.checkpoint_path} and metrics.csv still hold epoch {run.history[-1]['epoch']}"
            if run.history else "no epoch completed, so no checkpoint was written")
    lr = run.config["lr"]   # what --lr set; the schedule may have lowered it by the failing step
    print(f"error: {err}; try a lower --lr than {lr:g} (e.g. {lr / 10:g}) with a new --out; {kept}", file=sys.stderr)


def execute(run, argv):
    """Train, turning Ctrl-C into a saved checkpoint (exit 130). Returns the exit status."""
    epochs = run.config["epochs"]
    if run.position.epoch >= epochs:
        print(f"{run.checkpoint_path} has already completed {run.position.epoch} epoch(s); "
              f"pass --epochs N with N > {run.position.epoch} to train further")
        return 0
    run.out.mkdir(parents=True, exist_ok=True)
    run.write_config(sys.argv[1:] if argv is None else argv)
    print(f"{run.config['model']} on {run.config['dataset']}: {len(run.train_loader.dataset)} training and "
          f"{len(run.test_loader.dataset)} test images, {epochs} epoch(s); run folder {run.out}", flush=True)
    with CtrlC() as ctrl_c:
        try:
            run.train(ctrl_c)
        except StopTraining:
            run.save()
            p = run.position
            print(f"interrupted: saved {run.checkpoint_path} (after {p.epoch} epoch(s) and {p.batch} of the "
                  f"{len(run.train_loader)} batches of the next); continue with: {resume_hint(run)}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except KeyboardInterrupt:
            where = f"the last checkpoint is {run.checkpoint_path}" if run.checkpoint_path.exists() \
                else "no checkpoint was written"
            print(f"interrupted in the middle of a step, not saved; {where}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Diverged as err:
            report_divergence(run, err)
            return EXIT_DIVERGED
    last = run.history[-1]
    print(f"done: test accuracy {last['test_acc']:.2%} (top-1 error {last['test_top1_err']:.2%}, "
          f"top-5 error {last['test_top5_err']:.2%}); run folder {run.out}")
    return 0


def main(argv=None):
    """The command line. Returns the exit status: 0, 1 (bad input), 2 (bad option), 3 (diverged), 130 (Ctrl-C)."""
    args = build_parser().parse_args(argv)
    try:
        return execute(prepare(args), argv)
    except (UsageError, CheckpointError, DataError, OSError) as err:  # OSError: e.g. --out is not writable
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        backend.set_backend("numpy")


if __name__ == "__main__":
    sys.exit(main())
