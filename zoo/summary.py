"""``python -m zoo.summary MODEL``: print a zoo model's layer table (shapes, parameters, MACs, memory).

    python -m zoo.summary resnet18 --in-channels 1 --batch-size 64
    python -m zoo.summary resnet18 --device cuda-emulator     # the algorithms and bytes of another device
    print(zoo.summary(model, (3, 32, 32)))                    # or zoo.print_summary(...), for any Module

The table itself is ``minitorch_cnn.lab.layer_table`` (its docstring explains every column); a conv's
algorithm and scratch bytes come from its ``ConvPlan``, the same plan the Stepper shows.
This file is the command line only.
"""
import sys

import minitorch_cnn as mt
from minitorch_cnn.lab.layer_table import layer_table, print_summary, summary

__all__ = ["layer_table", "main", "print_summary", "summary"]


def build_parser():
    # imported here: ``import zoo`` imports this file for ``zoo.summary``, before zoo.cli's imports can run
    from . import MODELS
    from .cli import ZooParser, positive_int_arg
    p = ZooParser("python -m zoo.summary", "Print a model's layer table.")
    p.add_argument("model", choices=list(MODELS))
    p.add_argument("--in-channels", type=positive_int_arg, default=3)
    p.add_argument("--num-classes", type=positive_int_arg, default=10)
    p.add_argument("--batch-size", type=positive_int_arg, default=64, help="batch size for the memory columns")
    p.add_device_option()
    return p


def run(args):
    from . import get_model
    from .cli import UsageError
    try:
        where = mt.device(args.device or "cpu")
    except RuntimeError as err:   # "cuda" without CuPy or a GPU
        raise UsageError(str(err)) from None
    with mt.using_device(where):   # parameters made there, and the plans are that device's
        model = get_model(args.model, in_channels=args.in_channels, num_classes=args.num_classes)
        print_summary(model, (args.in_channels, 32, 32), args.batch_size)
    return 0


def main(argv=None):
    """The command line. Returns the exit status: 0, 1 (bad input), 2 (bad option)."""
    return build_parser().run(run, argv)


if __name__ == "__main__":
    sys.exit(main())
