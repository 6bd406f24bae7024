"""Command-line pieces shared by ``zoo.train`` and ``zoo.evaluate``.

Bad input is reported as one line on stderr with a non-zero exit, never a traceback: option values
are checked by argparse (exit 2, one line thanks to ``OneLineParser``), everything found later
(unknown names, missing files, mismatched checkpoints) raises ``UsageError`` (exit 1).
"""
import argparse
import math

from minitorch_cnn import backend
from minitorch_cnn.data import load_dataset


class UsageError(Exception):
    """A problem with the command line or the run folder, reported as one line."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr (exit 2) instead of the whole usage."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _number(kind, rule, ok):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {rule}, got {text!r}") from None
        if not (math.isfinite(value) and ok(value)):
            raise argparse.ArgumentTypeError(f"expected {rule}, got {text!r}")
        return value
    return parse


positive_int = _number(int, "an integer >= 1", lambda v: v >= 1)
natural_int = _number(int, "an integer >= 0", lambda v: v >= 0)
positive_float = _number(float, "a number > 0", lambda v: v > 0)
natural_float = _number(float, "a number >= 0", lambda v: v >= 0)
unit_float = _number(float, "a number in [0, 1)", lambda v: 0 <= v < 1)


def add_data_options(parser):
    """Options shared with ``zoo.evaluate``: where the data is, how it is checked, which device."""
    parser.add_argument("--data-dir", help="folder holding the dataset (default: $MINITORCH_DATA, then the cache)")
    parser.add_argument("--limit-test", type=positive_int, help="evaluate on N test images (class-balanced)")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="cpu (default) or cuda (needs CuPy)")
    parser.add_argument("--verify", choices=("checksum", "structure"),
                        help="advanced: 'structure' skips the official checksums (for generated test data)")
    parser.add_argument("--no-download", dest="download", action="store_false", default=None,
                        help="advanced: never download; fail if the files are missing")


def data_config(args, saved):
    """Where and how to find the data (``add_data_options``): the command line first, then ``saved``,
    the configuration of the run being resumed or evaluated, then the defaults."""
    return {"data_dir": args.data_dir or saved.get("data_dir"),
            "verify": args.verify or saved.get("verify") or "checksum",
            "download": args.download if args.download is not None else saved.get("download", True)}


def select_device(name):
    if name == "cuda" and not backend.gpu_available():
        raise UsageError("cuda is not available (CuPy is not installed or sees no CUDA device); use --device cpu")
    backend.set_backend("cupy" if name == "cuda" else "numpy")


def load_split(dataset, split, config, limit):
    """One split of ``dataset`` as the configuration says where and how to find it."""
    return load_dataset(dataset, split, data_dir=config["data_dir"], download=config["download"],
                        verify=config["verify"], limit=limit, stratified=True)


def check_channels(expected, dataset):
    if expected != dataset.in_channels:
        raise UsageError(f"the model takes {expected}-channel images but {dataset.name} has "
                         f"{dataset.in_channels} channel(s)")
