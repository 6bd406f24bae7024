"""Evaluate a checkpoint of ``zoo.train`` on a test set: ``python -m zoo.evaluate CHECKPOINT [options]``.

    python -m zoo.evaluate runs/lenet5-mnist-20250101-120000              # the run folder, or
    python -m zoo.evaluate runs/lenet5-mnist-20250101-120000/checkpoint.npz --data-dir ~/data
    python -m zoo.evaluate runs/lenet5-mnist-.../ --dataset fashion-mnist    # another dataset, same shapes

Prints the test loss (plain cross-entropy), the top-1 and top-5 error, and the accuracy of every class.
The data options default to those the run was trained with (except --device, which defaults to cpu).
This file is the command line only: ``zoo.run.evaluation`` does the work.
"""
import sys

from minitorch_cnn.data.registry import DATASETS

from .cli import EXIT_INTERRUPTED, ZooParser, positive_int_arg
from .run.evaluation import evaluate_checkpoint
from .run.loop import StopTraining


def build_parser():
    p = ZooParser("python -m zoo.evaluate", "Evaluate a zoo.train checkpoint on a test set.")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint.npz, or the run folder that holds one")
    p.add_argument("--dataset", help="evaluate on this dataset instead of the one trained on "
                                     f"(one of: {', '.join(DATASETS)}; same channels and classes)")
    p.add_argument("--batch-size", type=positive_int_arg, default=256)
    p.add_data_options()
    return p


def run(args):
    try:
        evaluation = evaluate_checkpoint(args.checkpoint, args.dataset, args.batch_size, args.limit_test,
                                         args.device, data_dir=args.data_dir, verify=args.verify,
                                         download=args.download)
    except StopTraining:        # Ctrl-C during the test pass
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print("\n".join(evaluation.lines()))
    return 0


def main(argv=None):
    """The command line. Returns the exit status: 0, 1 (bad input), 2 (bad option), 130 (Ctrl-C)."""
    return build_parser().run(run, argv)


if __name__ == "__main__":
    sys.exit(main())
