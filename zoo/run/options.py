"""The value checks of a training run's options, shared by the command lines and the study specs.

Each check takes the text of a command-line option (``"0.05"``) or the value of a spec (``0.05``) and
returns the value, or raises ``ValueError("expected a number > 0, got '-1'")`` (a bad value) or TypeError
(a flag given a value, or a value given ``true``). ``zoo.cli`` turns them
into argparse types (exit 2 with one line); ``TrainConfig`` applies them to the options it is given, so
a study spec's bad value fails when the spec is read, not hours into the study.
"""
import math
import re

OPTIMIZERS = ("sgd", "adam", "adagrad", "adadelta", "rmsprop")
SCHEDULES = ("none", "step", "cosine")
VERIFY_CHOICES = ("checksum", "structure")
DEVICE_HELP = "cpu (default), cuda or cuda:N (needs CuPy), or cuda-emulator (the CUDA kernels on the host)"


class UsageError(Exception):
    """A problem with the options or the run folder, reported as one line."""


def _number(kind, rule, ok, name):
    def check(value):
        if isinstance(value, bool) or (kind is int and isinstance(value, float)):
            raise ValueError(f"expected {rule}, got {value!r}")
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected {rule}, got {value!r}") from None
        if not (math.isfinite(number) and ok(number)):
            raise ValueError(f"expected {rule}, got {value!r}")
        return number
    check.__name__ = name
    return check


positive_int = _number(int, "an integer >= 1", lambda v: v >= 1, "positive_int")
natural_int = _number(int, "an integer >= 0", lambda v: v >= 0, "natural_int")
positive_float = _number(float, "a number > 0", lambda v: v > 0, "positive_float")
natural_float = _number(float, "a number >= 0", lambda v: v >= 0, "natural_float")
unit_float = _number(float, "a number in [0, 1)", lambda v: 0 <= v < 1, "unit_float")


def device_name(value):
    """'cpu', 'cuda', 'cuda:N' or 'cuda-emulator' (the one Device vocabulary of minitorch_cnn.device)."""
    if not (isinstance(value, str) and re.fullmatch(r"cpu|cuda|cuda:\d+|cuda-emulator", value)):
        raise ValueError(f"expected cpu, cuda, cuda:N or cuda-emulator, got {value!r}")
    return value


def module_names(value):
    """``"a.b,c"`` or ``["a.b", "c"]`` -> ``["a.b", "c"]`` (the modules --ablate removes); no empty names."""
    names = [str(n).strip() for n in value] if isinstance(value, list) else [n.strip() for n in str(value).split(",")]
    if not all(names):
        raise ValueError(f"expected module names separated by commas, got {value!r}")
    return names


def choice(values):
    def check(value):
        if value not in values:
            raise ValueError(f"invalid choice: {value!r} (choose from {', '.join(map(repr, values))})")
        return value
    return check


def switch(value):
    """A flag: true or false (a spec's ``augment = false`` is the command line's --no-augment)."""
    if not isinstance(value, bool):
        raise TypeError(f"takes true or false, got {value!r}")
    return value


def text(value):
    if isinstance(value, bool):
        raise TypeError(f"takes a value, not {value!r}")
    return str(value)
