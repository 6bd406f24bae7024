"""Shared set-up of the fault tests: tiny generated datasets, an isolated data search, a tiny fast model.

Every test here provokes one fault (a signal, a planted file, a hostile input) and checks the outcome is
either clean (one line on stderr, non-zero exit) or harmless (nothing lost, nothing untrue printed).
"""
from dataclasses import replace

import pytest
from support.formats import write_data_folder
from support.isolation import isolate_from_user_data

import zoo
from minitorch_cnn import nn
from zoo import train as train_cli

FAST = ["--verify", "structure", "--no-download", "--batch-size", "16", "--limit-test", "20"]


class Tiny(nn.Module):
    """A conv and a linear layer: a step costs a millisecond."""

    def __init__(self, in_channels=1, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(in_channels, 2, 3, stride=4), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(2 * 8 * 8, num_classes))

    def forward(self, x):
        return self.net(x)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return write_data_folder(tmp_path_factory.mktemp("data"))


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No test sees the user's data folders or the system ones; the tiny model is registered."""
    isolate_from_user_data(tmp_path, monkeypatch)
    monkeypatch.setitem(zoo.MODELS, "tiny", replace(zoo.MODELS["lenet5"], name="tiny", builder=Tiny))


def cli(module, argv):
    """Run a command line in-process; its exit status (argparse exits with SystemExit)."""
    try:
        return module.main([str(a) for a in argv])
    except SystemExit as exit_:
        return exit_.code


def train(data_dir, out, *extra, model="tiny"):
    return cli(train_cli, [model, "mnist", "--data-dir", data_dir, "--out", out, *FAST, *extra])


def error_lines(capsys):
    """stderr's lines other than progress bars; asserts no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.strip() and "batch/s" not in line and "|" not in line]
