"""``--time-budget`` (zoo/run/budget.py) on 48 generated MNIST images, batch 4 (12 steps an epoch).

The training loop's clock is replaced by one that advances exactly one second per reading, so every step
takes one second and a 0.5-minute budget is exactly 30 steps: the tests check the numbers, not the machine.
"""
import json
import math

import numpy as np
import pytest
from support.formats import write_mnist
from support.isolation import isolate_from_user_data

from zoo import train as train_cli
from zoo.run import TrainConfig, UsageError, loop, trainer
from zoo.run.budget import lr_at
from zoo.run.checkpoint import load_checkpoint, read_meta
from zoo.studies import report as study_report
from zoo.studies.spec import command_line

FAST = ["--verify", "structure", "--no-download", "--batch-size", "4", "--limit-test", "10", "--epochs", "50"]


class OneSecondPerReading:
    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 1.0
        return self.now


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_mnist(root / "mnist")        # 48 training and 20 test images
    return root


@pytest.fixture(autouse=True)
def setup(tmp_path, monkeypatch):
    isolate_from_user_data(tmp_path, monkeypatch)
    for name in ("plot_curves", "plot_confusion"):
        monkeypatch.setattr(trainer, name, lambda *args, **kwargs: None)
    monkeypatch.setattr(loop, "time", OneSecondPerReading())


def train(data_dir, out, *extra):
    try:
        return train_cli.main([str(a) for a in ["lenet5", "mnist", "--data-dir", data_dir, "--out", out, *FAST,
                                                 *extra]])
    except SystemExit as exit_:
        return exit_.code


def test_budget_stops_saves_and_tests_the_whole_test_set(data_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert train(data_dir, out, "--time-budget", "0.5") == 0
    config = json.loads((out / "config.json").read_text())
    assert config["time_budget"] == 0.5
    budget = config["budget"]
    assert budget["stopped"] == "budget" and budget["steps"] == 30 and budget["images_seen"] == 120
    assert budget["epochs_seen"] == 2.5 and budget["train_seconds"] == 30.0
    assert budget["spent_s"] == 24.0                                    # the 2 whole epochs; + 6 s in the 3rd
    assert budget["step_seconds"] == 1.0 and budget["schedule_steps"] == 30   # 11 + (30 - 11) / 1
    assert budget["full_test_images"] == 20
    meta = read_meta(out)
    assert (meta["position"]["epoch"], meta["position"]["batch"]) == (2, 6) and meta["budget"]["stopped"] == "budget"
    rows = [line.split(",") for line in (out / "metrics.csv").read_text().splitlines()]
    rows = [dict(zip(rows[0], r)) for r in rows[1:]]
    assert [(r["epoch"], r["steps"], r["images_seen"]) for r in rows] == [("1", "12", "48"), ("2", "24", "96"),
                                                                         ("3", "30", "120")]
    # the per-step cosine over 30 steps: the lr after step 12, and 0 at its end
    assert float(rows[0]["lr"]) == pytest.approx(0.05 * (1 + math.cos(math.pi * 12 / 30)) / 2)
    assert float(rows[-1]["lr"]) == pytest.approx(0.0, abs=1e-12)
    confusion = np.loadtxt(out / "confusion_matrix.csv", delimiter=",", skiprows=1, usecols=range(1, 11))
    assert confusion.sum() == 20           # the last test pass: all 20 images, not --limit-test's 10
    printed = capsys.readouterr().out
    assert "stopped at the end of its time after 30 steps and 120 images (2.50 epochs) in 0.50 of 0.5 min" in printed
    assert train(data_dir, out, "--resume", "--data-dir", data_dir) == 0     # nothing left
    assert "finished its 0.5-minute time budget (stopped: budget)" in capsys.readouterr().out
    monkeypatch.setattr(study_report, "plot_study_curves", lambda *args, **kwargs: None)
    monkeypatch.setattr(study_report, "plot_error_vs_time", lambda *args, **kwargs: None)
    report = study_report.write_report(tmp_path).read_text()
    final = f"{100 * float(rows[-1]['test_top1_err']):.2f} %"
    assert "| 2.50 in 0.5 of 0.5 min (30 steps, stopped: budget) |" in report and f"| {final} | " in report
    assert "| done |" in report


def test_resumed_budget_counts_the_time_already_spent(data_dir, tmp_path, monkeypatch):
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    assert train(data_dir, straight, "--time-budget", "0.5") == 0
    calls = {"n": 0}
    original = trainer.BudgetGuard.check

    def ctrl_c_after_step_15(self):           # the guard runs after every training step
        calls["n"] += 1
        if calls["n"] == 15:
            self.ctrl_c.requested = True
        original(self)
    monkeypatch.setattr(trainer.BudgetGuard, "check", ctrl_c_after_step_15)
    assert train(data_dir, cut, "--time-budget", "0.5") == 130
    meta = read_meta(cut)
    assert meta["budget"]["spent_s"] == 12.0 and meta["position"]["seconds"] == 3.0
    assert meta["budget"]["schedule_steps"] == 30 and meta["budget"]["stopped"] is None
    monkeypatch.setattr(trainer.BudgetGuard, "check", original)
    monkeypatch.setattr(loop, "time", OneSecondPerReading())          # a new process: a new clock
    assert train(data_dir, cut, "--resume", "--data-dir", data_dir) == 0
    config = json.loads((cut / "config.json").read_text())
    assert config["budget"]["steps"] == 30 and config["budget"]["train_seconds"] == 30.0
    assert len(config["invocations"]) == 2
    # the same steps at the same learning rates: the same weights as the uninterrupted run
    a, b = load_checkpoint(straight)[1], load_checkpoint(cut)[1]
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_budget_learning_rate_per_step():
    config = {"lr": 0.1, "schedule": "cosine"}
    assert lr_at(config, 5, None) == 0.1                                  # before the calibration
    assert lr_at(config, 10, 20) == pytest.approx(0.05)
    assert lr_at(config, 25, 20) == pytest.approx(0.0, abs=1e-15)          # past the end: stays at the end
    assert lr_at({**config, "schedule": "step"}, 7, 20) == pytest.approx(0.01)   # second third
    assert lr_at({**config, "schedule": "step"}, 20, 20) == pytest.approx(0.001)
    assert lr_at({**config, "schedule": "none"}, 7, 20) == 0.1


def test_budget_options(data_dir, tmp_path, capsys):
    assert train(data_dir, tmp_path / "bad", "--time-budget", "0") == 2
    assert "--time-budget: expected a number > 0" in capsys.readouterr().err
    out = tmp_path / "run"
    assert train(data_dir, out, "--time-budget", "0.1") == 0
    with pytest.raises(UsageError, match="--time-budget 0.2 differs from the saved 0.1"):
        TrainConfig.resumed(str(out), time_budget=0.2)
    assert command_line({"model": "lenet5", "dataset": "mnist", "time_budget": 20})[-2:] == ["--time-budget", "20"]


def test_budget_on_the_real_clock(data_dir, tmp_path, monkeypatch):
    """Without the fake clock: a 0.03 s budget stops after a few steps, inside the first epoch."""
    monkeypatch.setattr(loop, "time", __import__("time"))
    out = tmp_path / "run"
    assert train(data_dir, out, "--time-budget", "0.0005") == 0
    budget = json.loads((out / "config.json").read_text())["budget"]
    assert budget["stopped"] in ("budget", "schedule end") and 1 <= budget["steps"] <= 50 * 12
    assert budget["train_seconds"] >= 0.03 or budget["stopped"] == "schedule end"
    assert budget["full_test_images"] == 20 and budget["images_seen"] == 4 * budget["steps"]


def test_a_cap_that_binds_says_so(data_dir, tmp_path):
    """3 epochs of 12 steps fit in a 1-minute budget at 1 s a step: the schedule is the cap's 36 steps, and
    the run says the epochs, not the time, stopped it."""
    out = tmp_path / "run"
    assert train(data_dir, out, "--time-budget", "1", "--epochs", "3") == 0
    budget = json.loads((out / "config.json").read_text())["budget"]
    assert (budget["schedule_steps"], budget["steps"], budget["stopped"]) == (36, 36, "epochs")
    assert budget["train_seconds"] == 36.0 and budget["epochs_seen"] == 3.0
