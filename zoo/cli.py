"""The one parser class of the zoo's command lines, and the options they share.

    parser = ZooParser("python -m zoo.evaluate", "Evaluate a zoo.train checkpoint on a test set.")
    parser.add_argument("checkpoint")
    parser.add_data_options()                 # --data-dir --limit-test --device --verify --no-download
    sys.exit(parser.run(body, argv))          # body(args) -> exit status

Bad input is reported as one line on stderr with a non-zero exit, never a traceback: option values are
checked by argparse (exit 2, one line thanks to ``ZooParser.error``), everything found later (unknown
names, missing files, mismatched checkpoints) raises ``UsageError`` (or DataError, CheckpointError,
OSError) and ``ZooParser.run`` prints it as ``error: ...`` (exit 1). Ctrl-C is exit 130; output into a
closed pipe (``| head``) ends quietly with exit 141.

The options ``zoo.train``, ``zoo.evaluate``, ``zoo.study``, ``zoo.step`` and ``zoo.summary`` share are
defined here once (``add_device_option``, ``add_data_dir_option``, ``add_data_options``); the value checks
(``positive_int`` ...) are those ``zoo.run.TrainConfig`` applies to a study's values too.
"""
import argparse
import os
import signal
import sys

from minitorch_cnn.data import DataError

from .run.checkpoint import CheckpointError
from .run.options import (
    DEVICE_HELP,
    VERIFY_CHOICES,
    UsageError,
    device_name,
    module_names,
    natural_float,
    natural_int,
    positive_float,
    positive_int,
    unit_float,
)

EXIT_OK, EXIT_BAD_INPUT, EXIT_BAD_OPTION, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_BROKEN_PIPE = 141     # 128 + SIGPIPE, what a shell tool killed by a closed pipe reports
BAD_INPUT = (UsageError, CheckpointError, DataError, OSError)   # OSError: e.g. --out is not writable


def argument_type(check):
    """An argparse ``type=`` from a value check of zoo.run.options (its ValueError becomes argparse's
    one-line "argument --x: expected ..., got ..." message)."""
    def parse(text):
        try:
            return check(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    parse.__name__ = check.__name__
    return parse


class ZooParser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr (exit 2) instead of the whole usage, with the
    zoo's shared options defined once as methods."""

    def __init__(self, prog, description, **kwargs):
        super().__init__(prog=prog, description=description, **kwargs)

    def error(self, message):
        self.exit(EXIT_BAD_OPTION, f"{self.prog}: error: {message} (see --help)\n")

    def add_device_option(self):
        """--device: cpu (default), cuda, cuda:N or cuda-emulator; None when not given."""
        self.add_argument("--device", type=argument_type(device_name), help=DEVICE_HELP)

    def add_data_dir_option(self, help="folder holding the dataset (default: $MINITORCH_DATA, then the cache)"):
        self.add_argument("--data-dir", help=help)

    def add_data_options(self):
        """Where the data is, how it is checked, how much of the test set, which device (train, evaluate)."""
        self.add_data_dir_option()
        self.add_argument("--limit-test", type=argument_type(positive_int),
                          help="evaluate on N test images (class-balanced)")
        self.add_device_option()
        self.add_argument("--verify", choices=VERIFY_CHOICES,
                          help="advanced: 'structure' skips the official checksums (for generated test data)")
        self.add_argument("--no-download", dest="download", action="store_false", default=None,
                          help="advanced: never download; fail if the files are missing")

    def run(self, body, argv=None):
        """Parse ``argv`` and return ``body(args)``'s exit status; bad input -> one line and exit 1,
        Ctrl-C -> exit 130."""
        restore_ctrl_c()
        args = self.parse_args(argv)
        try:
            return body(args)
        except BrokenPipeError:      # the reader went away (``| head``): stop quietly, as a shell tool does
            quiet_stdout()
            return EXIT_BROKEN_PIPE
        except BAD_INPUT as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED


def restore_ctrl_c():
    """Python's own SIGINT handler (KeyboardInterrupt) again, in place of the one ``zoo/__init__.py`` sets
    for ``python -m zoo.X`` while the libraries load."""
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:           # not the main thread
        pass


def quiet_stdout():
    """Point file descriptor 1 at /dev/null, so the interpreter's last flush of stdout at exit does not
    report the broken pipe again (a stdout without a file descriptor, e.g. in tests, is left alone)."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


# argparse types for the options each command adds itself (the checks live in zoo.run.options)
positive_int_arg = argument_type(positive_int)
natural_int_arg = argument_type(natural_int)
positive_float_arg = argument_type(positive_float)
natural_float_arg = argument_type(natural_float)
unit_float_arg = argument_type(unit_float)
module_names_arg = argument_type(module_names)
