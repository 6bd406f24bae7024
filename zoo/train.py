"""Train a zoo model on MNIST, Fashion-MNIST or CIFAR-10: ``python -m zoo.train MODEL DATASET [options]``.

    python -m zoo.train lenet5 mnist                      # the model's default recipe (zoo/run/config.py)
    python -m zoo.train resnet18 cifar10 --epochs 5 --lr 0.05 --limit-train 5000
    python -m zoo.train resnet18 cifar10 --out runs/r18 --resume --epochs 10    # continue a run
    python -m zoo.train googlenet cifar10 --time-budget 20 --epochs 100   # 20 minutes of training, at most 100 epochs

Each epoch shows a progress bar (running loss, accuracy, images/s) and then one summary line. The run
folder (``--out``, default ``runs/<model>-<dataset>-<timestamp>``) receives:

    config.json            the exact configuration, defaults resolved
    metrics.csv            one row per epoch
    curves.png             loss, top-1 and top-5 error against epochs, train and test
    confusion_matrix.png   of the final test pass (confusion_matrix.csv: of the latest one)
    checkpoint.npz         weights, optimizer, schedule, position and random state (see zoo/run/checkpoint.py)

The checkpoint is rewritten at the end of every epoch and on Ctrl-C or SIGTERM (never with inf or NaN
weights). One run at a time uses a run folder (``.lock`` holds its process id), and ``--out`` refuses a
non-empty folder that is not a run unless ``--force``. ``--resume`` continues bitwise
exactly where it stopped, on the CPU: ``--epochs 2`` equals ``--epochs 1`` followed by
``--resume --epochs 2``. Errors in the input are one line on stderr and a non-zero exit. A loss that
becomes inf or NaN stops the run at that step (exit 3), leaving the checkpoint and metrics of the last
good epoch as they were. This file is the command line only: ``zoo.run`` (TrainConfig, train) does the work.
"""
import sys

from minitorch_cnn.data import DATASETS

from . import MODELS
from .cli import (
    ZooParser,
    module_names_arg,
    natural_float_arg,
    natural_int_arg,
    positive_float_arg,
    positive_int_arg,
    unit_float_arg,
)
from .models.init import INITS
from .run import TrainConfig, train
from .run.options import OPTIMIZERS, SCHEDULES


def build_parser():
    p = ZooParser("python -m zoo.train", "Train a zoo model on an image dataset.")
    p.add_argument("model", metavar="MODEL", help="one of: " + ", ".join(MODELS))
    p.add_argument("dataset", metavar="DATASET", help="one of: " + ", ".join(DATASETS))
    p.add_argument("--epochs", type=positive_int_arg, help="total number of epochs")
    p.add_argument("--batch-size", type=positive_int_arg)
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--lr", type=positive_float_arg, help="learning rate")
    p.add_argument("--momentum", type=unit_float_arg, help="sgd and rmsprop only")
    p.add_argument("--nesterov", action="store_true", default=None, help="sgd with momentum: Nesterov's variant")
    p.add_argument("--weight-decay", type=natural_float_arg, help="L2 penalty")
    p.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule over the epochs")
    p.add_argument("--label-smoothing", type=unit_float_arg)
    p.add_argument("--aux-weight", type=natural_float_arg, help="GoogLeNet: weight of the auxiliary losses")
    p.add_argument("--main-weight", type=positive_float_arg,
                   help="GoogLeNet: weight of the main loss (default 1; the course slides use 0.7 with aux 0.3)")
    p.add_argument("--no-augment", dest="augment", action="store_false", default=None,
                   help="CIFAR-10: no random crop and flip")
    p.add_argument("--limit-train", type=positive_int_arg, help="train on N images (class-balanced)")
    p.add_argument("--ablate", type=module_names_arg, metavar="NAME[,NAME...]",
                   help="replace these modules (names as zoo.summary prints them) by an identity; a Linear "
                        "layer then given another number of features (e.g. without a pooling stage) is replaced "
                        "by one that takes them, freshly initialised (printed; zoo/run/ablate.py)")
    p.add_argument("--init", choices=INITS,
                   help="the initial weights: default (each model's builder: PyTorch's defaults, Kaiming for "
                        "resnet18) or kaiming (Kaiming-normal fan-out for every conv; zoo/models/init.py)")
    p.add_argument("--seed", type=natural_int_arg, help="seeds initialisation, dropout, shuffling, augmentation")
    p.add_argument("--time-budget", type=positive_float_arg, metavar="MINUTES",
                   help="train for this many minutes of training time (test passes excluded), then save and "
                        "evaluate the whole test set; the schedule runs per step over the steps that fit "
                        "(estimated from the first steps' time); --epochs becomes a cap (zoo/run/budget.py)")
    p.add_argument("--tf32", action="store_true", default=None,
                   help="let float32 GEMMs (convs, linear layers) on a GPU use TF32 tensor cores: ~1e-3 relative "
                        "error in their outputs, as torch.backends.cuda.matmul.allow_tf32; no effect on the CPU")
    p.add_data_options()
    p.add_argument("--out", help="run folder (default: runs/<model>-<dataset>-<timestamp>)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--force", action="store_true",
                   help="write into an --out folder that holds other files (they are kept; the run's own "
                        "config.json, metrics.csv and figures are replaced)")
    return p


def config_from(args):
    """The TrainConfig the parsed command line asks for (options not given are None: the defaults)."""
    options = {k: v for k, v in vars(args).items() if k not in ("model", "dataset", "resume", "force")}
    if args.resume:
        return TrainConfig.resumed(options.pop("out"), args.model, args.dataset, **options)
    return TrainConfig.new(args.model, args.dataset, force=args.force, **options)


def main(argv=None):
    """The command line. Returns the exit status: 0, 1 (bad input), 2 (bad option), 3 (diverged), 130 (Ctrl-C),
    143 (SIGTERM: saved like Ctrl-C)."""
    invocation = sys.argv[1:] if argv is None else argv
    return build_parser().run(lambda args: train(config_from(args), invocation).exit_status, argv)


if __name__ == "__main__":
    sys.exit(main())
