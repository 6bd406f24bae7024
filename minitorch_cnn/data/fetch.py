"""Fetch a dataset once, so that the labs and ``zoo.train`` find it offline afterwards:

    python -m minitorch_cnn.data.fetch mnist                    # into ~/.cache/minitorch_cnn (or $MINITORCH_DATA)
    python -m minitorch_cnn.data.fetch cifar10 --data-dir DIR   # into DIR; then MINITORCH_DATA=DIR

Only a command line around ``load_dataset(name, split, download=True)``: it finds the files where they
already are (see ``minitorch_cnn.data.datasets`` for the order), else downloads them into the first
writable folder of ``--data-dir``, ``$MINITORCH_DATA`` and the per-user cache, and checks their checksums.
"""
import argparse
import sys

from .datasets import load_dataset
from .errors import DataError
from .registry import DATASETS


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m minitorch_cnn.data.fetch", description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="+", help=f"dataset(s): {', '.join(sorted(DATASETS))}")
    p.add_argument("--data-dir", help="folder to look in first and download into (default: $MINITORCH_DATA, "
                                      "else ~/.cache/minitorch_cnn)")
    args = p.parse_args(argv)
    for name in args.names:
        try:
            for split in ("train", "test"):
                dataset = load_dataset(name, split, data_dir=args.data_dir, download=True)
                print(f"{name} {split}: {len(dataset)} images ready")
        except (DataError, ValueError) as err:
            print(f"{name}: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
