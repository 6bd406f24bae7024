"""The training and evaluation command lines, end to end, on tiny datasets generated in the official formats.

Everything runs in-process through ``main(argv)``. The generated files cannot match the official checksums,
so every command passes ``--verify structure`` (and ``--no-download``, so nothing ever touches the network).
"""
import json
import os
import re
import signal
from dataclasses import replace

import numpy as np
import pytest
from support.formats import write_data_folder
from support.isolation import isolate_from_user_data
from support.numerics import reference_metrics

import zoo
from minitorch_cnn import Tensor, nn
from minitorch_cnn.data import load_dataset
from minitorch_cnn.device import gpu_available
from zoo import evaluate as evaluate_cli
from zoo import train as train_cli
from zoo.cli import EXIT_DIVERGED
from zoo.run import config as run_config
from zoo.run import loop, report
from zoo.run.checkpoint import CheckpointError, load_checkpoint

FAST = ["--verify", "structure", "--no-download", "--batch-size", "16", "--limit-test", "20"]


# ----------------------------------------------------------------------------- data and helpers

@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_data_folder(tmp_path_factory.mktemp("data"))


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No test sees the user's data folders or the system ones."""
    isolate_from_user_data(tmp_path, monkeypatch)


def cli(module, argv):
    """Run a command line in-process; its exit status (argparse exits with SystemExit)."""
    try:
        return module.main([str(a) for a in argv])
    except SystemExit as exit_:
        return exit_.code


def train(data_dir, out, *extra, model="lenet5", dataset="mnist"):
    return cli(train_cli, [model, dataset, "--data-dir", data_dir, "--out", out, *FAST, *extra])


def arrays(path):
    with np.load(path, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files if k != "meta"}


def assert_same_arrays(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key


class TinyDropNet(nn.Module):
    """Small and fast, with dropout: exercises the saved random state."""

    def __init__(self, in_channels=1, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(in_channels, 4, 3, stride=2), nn.ReLU(), nn.Flatten(),
                                 nn.Dropout(0.5), nn.Linear(4 * 15 * 15, num_classes))

    def forward(self, x):
        return self.net(x)


class TinyGoogLeNet(TinyDropNet):
    """Returns (logits, aux1, aux2) in training mode like GoogLeNet, logits in eval mode."""

    def forward(self, x):
        logits = self.net(x)
        return (logits, logits * 0.5, logits * 2.0) if self.training else logits


@pytest.fixture
def tiny_models(monkeypatch):
    monkeypatch.setitem(zoo.MODELS, "tinydrop", replace(zoo.MODELS["lenet5"], name="tinydrop", builder=TinyDropNet))
    monkeypatch.setitem(zoo.MODELS, "googlenet", replace(zoo.MODELS["googlenet"], builder=TinyGoogLeNet))


# ----------------------------------------------------------------------------- end to end

def test_lenet5_end_to_end(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(data_dir, out, "--epochs", "2", "--limit-train", "32") == 0
    printed = capsys.readouterr().out
    assert "epoch 1/2" in printed and "epoch 2/2" in printed and "top-5 err" in printed and "img/s" in printed

    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "lenet5" and config["dataset"] == "mnist" and config["in_channels"] == 1
    defaults = zoo.MODELS["lenet5"].recipe
    assert (config["optimizer"], config["lr"], config["momentum"]) == ("sgd", defaults["lr"], defaults["momentum"])
    assert config["epochs"] == 2 and config["batch_size"] == 16 and config["augment"] is False

    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,lr,train_loss,train_acc,test_loss")
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]
    for png in ("curves.png", "confusion_matrix.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta, model_state, optimizer_state = load_checkpoint(out)
    assert meta["position"] == {"epoch": 2, "batch": 0, "loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0,
                                "correct5": 0}
    assert set(model_state) == set(zoo.get_model("lenet5", in_channels=1).state_dict())
    assert optimizer_state["state"]  # momentum buffers
    assert not [p for p in out.iterdir() if ".tmp" in p.name]

    # Evaluating the checkpoint reproduces the last test pass.
    assert cli(evaluate_cli, [out, "--verify", "structure", "--limit-test", "20"]) == 0
    report = capsys.readouterr().out
    last = meta["history"][-1]
    assert f"top-1 error    {last['test_top1_err']:.2%}" in report
    assert f"top-5 error    {last['test_top5_err']:.2%}" in report
    assert f"test loss      {last['test_loss']:.4f}" in report
    assert len([line for line in report.splitlines() if line.endswith("/2)")]) == 10  # 2 test images per class
    # ... and agrees with top-1, top-5 and the per-class counts computed here from the checkpoint's logits.
    model = zoo.get_model("lenet5", in_channels=1)
    model.load_state_dict(model_state)
    test = load_dataset("mnist", "test", data_dir=data_dir, download=False, verify="structure")
    x = (test.images / 255.0 - test.mean[0]) / test.std[0]
    top1_err, top5_err, confusion = reference_metrics(model.eval()(Tensor(x.astype(np.float32))).numpy(), test.labels)
    assert f"top-1 error    {top1_err:.2%}" in report and f"top-5 error    {top5_err:.2%}" in report
    for name, row, k in zip(test.classes, confusion, range(10)):
        assert any(line.split()[0] == name and line.endswith(f"({row[k]}/{row.sum()})") for line in report.splitlines())


@pytest.mark.parametrize("options", [[], ["--optimizer", "adam", "--schedule", "step"]],
                         ids=["sgd-cosine", "adam-step"])
def test_resume_is_bitwise_identical(data_dir, tmp_path, tiny_models, capsys, options):
    """2 epochs in one go == 1 epoch, then --resume to 2 (weights, optimizer state, random state, metrics)."""
    common = ["--limit-train", "40", *options]
    assert train(data_dir, tmp_path / "once", "--epochs", "2", *common, model="tinydrop") == 0
    assert train(data_dir, tmp_path / "twice", "--epochs", "1", *common, model="tinydrop") == 0
    assert train(data_dir, tmp_path / "twice", "--epochs", "2", "--resume", model="tinydrop") == 0
    assert_same_arrays(arrays(tmp_path / "once" / "checkpoint.npz"), arrays(tmp_path / "twice" / "checkpoint.npz"))
    once, twice = load_checkpoint(tmp_path / "once")[0], load_checkpoint(tmp_path / "twice")[0]
    assert once["rng_state"] == twice["rng_state"]
    assert without_timings(once["history"]) == without_timings(twice["history"])
    assert len((tmp_path / "twice" / "metrics.csv").read_text().splitlines()) == 3
    # Nothing left to do: a message, exit 0.
    assert train(data_dir, tmp_path / "twice", "--epochs", "2", "--resume", model="tinydrop") == 0
    assert "already completed 2 epoch(s)" in capsys.readouterr().out


def without_timings(history):
    return [{k: v for k, v in row.items() if k not in ("epoch_seconds", "train_images_per_s")} for row in history]


def interrupt_at(monkeypatch, batch, how):
    """Interrupt training just before the forward pass of the ``batch``-th batch (counting from 1)."""
    calls = {"n": 0}
    original = TinyDropNet.forward

    def forward(self, x):
        if self.training:
            calls["n"] += 1
            if calls["n"] == batch:
                if how == "signal":
                    os.kill(os.getpid(), signal.SIGINT)    # a real Ctrl-C: honoured after this batch
                else:
                    raise KeyboardInterrupt                # inside the step: must not be saved
        return original(self, x)

    monkeypatch.setattr(TinyDropNet, "forward", forward)


def test_ctrl_c_saves_and_resumes_exactly(data_dir, tmp_path, tiny_models, monkeypatch, capsys):
    args = ["--limit-train", "40", "--epochs", "2"]            # 3 batches per epoch
    original_forward = TinyDropNet.forward
    assert train(data_dir, tmp_path / "straight", *args, model="tinydrop") == 0
    interrupt_at(monkeypatch, 5, "signal")                     # epoch 2, batch 2
    assert train(data_dir, tmp_path / "cut", *args, model="tinydrop") == 130
    err = capsys.readouterr().err
    assert "interrupted: saved" in err and "--resume" in err and "Traceback" not in err
    meta = load_checkpoint(tmp_path / "cut")[0]
    assert (meta["position"]["epoch"], meta["position"]["batch"]) == (1, 2)
    assert not [p for p in (tmp_path / "cut").iterdir() if ".tmp" in p.name]
    handler = signal.getsignal(signal.SIGINT)
    assert not isinstance(getattr(handler, "__self__", None), loop.CtrlC)   # our handler is gone again

    monkeypatch.setattr(TinyDropNet, "forward", original_forward)
    assert train(data_dir, tmp_path / "cut", "--resume", model="tinydrop") == 0
    assert_same_arrays(arrays(tmp_path / "straight" / "checkpoint.npz"), arrays(tmp_path / "cut" / "checkpoint.npz"))


def test_interrupt_inside_a_step_keeps_the_last_checkpoint(data_dir, tmp_path, tiny_models, monkeypatch, capsys):
    out = tmp_path / "run"
    interrupt_at(monkeypatch, 5, "raise")                      # epoch 2 is cut in the middle of a step
    assert train(data_dir, out, "--limit-train", "40", "--epochs", "2", model="tinydrop") == 130
    assert "not saved; the last checkpoint is" in capsys.readouterr().err
    assert load_checkpoint(out)[0]["position"]["epoch"] == 1   # the end-of-epoch-1 checkpoint, intact


def test_keyboard_interrupt_between_batches_is_saved(data_dir, tmp_path, tiny_models, monkeypatch, capsys):
    original = loop.tqdm.update
    calls = {"n": 0}

    def update(self, n=1):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt                            # e.g. Ctrl-C without our handler installed
        return original(self, n)

    monkeypatch.setattr(loop.tqdm, "update", update)
    out = tmp_path / "run"
    assert train(data_dir, out, "--limit-train", "40", "--epochs", "1", model="tinydrop") == 130
    assert "interrupted: saved" in capsys.readouterr().err
    assert load_checkpoint(out)[0]["position"]["batch"] == 2


# ----------------------------------------------------------------------------- divergence

def last_line(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]    # after the progress bar's own lines


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_a_huge_learning_rate_stops_at_the_first_non_finite_loss(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(data_dir, out, "--lr", "1e9", "--epochs", "2", "--limit-train", "48") == EXIT_DIVERGED
    line = last_line(capsys)
    assert re.fullmatch(r"error: training diverged: the training loss is (nan|inf) at epoch 1, batch [23]/3, "
                        r"with learning rate 1e\+09; try a lower --lr than 1e\+09 \(e\.g\. 1e\+08\) with a new --out; "
                        r"no epoch completed, so no checkpoint was written", line), line
    assert not (out / "checkpoint.npz").exists()
    assert (out / "metrics.csv").read_text().splitlines() == [",".join(report.METRICS_FIELDS)]


def poison(monkeypatch, mode, call):
    """TinyDropNet's ``call``-th forward pass in ``mode`` ('train' or 'eval') returns NaN logits."""
    calls = {"n": 0}
    original = TinyDropNet.forward

    def forward(self, x):
        y = original(self, x)
        calls["n"] += self.training == (mode == "train")
        return y * float("nan") if calls["n"] == call and self.training == (mode == "train") else y

    monkeypatch.setattr(TinyDropNet, "forward", forward)


@pytest.mark.parametrize("mode, call, where", [("train", 5, "the training loss is nan at epoch 2, batch 2/3"),
                                                ("eval", 3, "the test loss is nan at epoch 2, after its last batch")])
def test_divergence_keeps_the_last_good_epoch(data_dir, tmp_path, tiny_models, monkeypatch, capsys, mode, call, where):
    args = ["--limit-train", "40", "--lr", "0.5"]
    assert train(data_dir, tmp_path / "good", "--epochs", "1", *args, model="tinydrop") == 0
    good_metrics = (tmp_path / "good" / "metrics.csv").read_text().splitlines()
    poison(monkeypatch, mode, call)       # 3 training and 2 test batches an epoch: the second epoch goes bad,
    # at the cosine schedule's learning rate of epoch 2 of 3: 0.5 * (1 + cos(pi / 3)) / 2 = 0.375
    out = tmp_path / "bad"
    assert train(data_dir, out, "--epochs", "3", *args, model="tinydrop") == EXIT_DIVERGED
    assert last_line(capsys) == (f"error: training diverged: {where}, with learning rate 0.375; try a lower --lr "
                                 f"than 0.5 (e.g. 0.05) with a new --out; {out / 'checkpoint.npz'} and metrics.csv "
                                 "still hold epoch 1")
    assert_same_arrays(arrays(tmp_path / "good" / "checkpoint.npz"), arrays(out / "checkpoint.npz"))
    assert load_checkpoint(out)[0]["position"]["epoch"] == 1
    metrics = (out / "metrics.csv").read_text().splitlines()
    assert len(metrics) == 2 and metrics[1].split(",")[:5] == good_metrics[1].split(",")[:5]


def test_googlenet_auxiliary_loss_path(data_dir, tmp_path, tiny_models):
    out = tmp_path / "run"
    assert train(data_dir, out, "--epochs", "1", "--aux-weight", "0.5", "--label-smoothing", "0.1",
                 "--limit-train", "16", model="googlenet") == 0
    config = json.loads((out / "config.json").read_text())
    assert config["aux_weight"] == 0.5 and config["label_smoothing"] == 0.1


@pytest.mark.parametrize("model", ["resnet18"])
def test_cifar10_run_with_augmentation(data_dir, tmp_path, model):
    out = tmp_path / "run"
    assert cli(train_cli, [model, "cifar10", "--data-dir", data_dir, "--out", out, "--verify", "structure",
                           "--no-download", "--epochs", "1", "--limit-train", "8", "--batch-size", "8",
                           "--limit-test", "4", "--optimizer", "adam", "--schedule", "step"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["augment"] is True and config["in_channels"] == 3 and config["lr"] == run_config.OPTIMIZER_LR["adam"]
    assert config["momentum"] is None and config["step_size"] == 1
    meta, _, optimizer_state = load_checkpoint(out)
    assert all(isinstance(s["step"], int) for s in optimizer_state["state"].values())   # Adam's scalar state


# ----------------------------------------------------------------------------- bad input

def one_line_error(capsys):
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


@pytest.mark.parametrize("argv,status,message", [
    (["alexnett", "mnist"], 1, "unknown model 'alexnett'; valid models: lenet5, alexnet, vgg16"),
    (["lenet5", "imagenet"], 1, "unknown dataset 'imagenet'; valid datasets: mnist, fashion-mnist, cifar10"),
    (["lenet5", "mnist", "--lr", "-0.1"], 2, "--lr: expected a number > 0"),
    (["lenet5", "mnist", "--lr", "nan"], 2, "--lr: expected a number > 0"),
    (["lenet5", "mnist", "--epochs", "0"], 2, "--epochs: expected an integer >= 1"),
    (["lenet5", "mnist", "--batch-size", "0"], 2, "--batch-size: expected an integer >= 1"),
    (["lenet5", "mnist", "--label-smoothing", "1"], 2, "--label-smoothing: expected a number in [0, 1)"),
    (["lenet5", "mnist", "--label-smoothing", "-0.1"], 2, "--label-smoothing: expected a number in [0, 1)"),
    (["lenet5", "mnist", "--weight-decay", "-1"], 2, "--weight-decay: expected a number >= 0"),
    (["lenet5", "mnist", "--seed", "-1"], 2, "--seed: expected an integer >= 0"),
    (["lenet5", "mnist", "--optimizer", "lbfgs"], 2, "--optimizer: invalid choice"),
    (["lenet5", "mnist", "--optimizer", "adam", "--momentum", "0.9"], 1, "--momentum applies to sgd and rmsprop"),
    (["lenet5", "mnist", "--resume"], 1, "--resume needs --out DIR"),
])
def test_bad_options(argv, status, message, capsys):
    assert cli(train_cli, argv) == status
    assert message in one_line_error(capsys)


def test_bad_run_folders(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(data_dir, tmp_path / "missing", "--resume") == 1
    assert "no checkpoint at" in one_line_error(capsys)
    assert train(data_dir, out, "--epochs", "1", "--limit-train", "16") == 0
    capsys.readouterr()
    assert train(data_dir, out, "--epochs", "1") == 1
    assert "already holds a checkpoint; add --resume" in one_line_error(capsys)
    assert train(data_dir, out, "--resume", model="alexnet") == 1
    assert "is for lenet5 on mnist, not alexnet on mnist" in one_line_error(capsys)
    assert train(data_dir, out, "--resume", dataset="fashion-mnist") == 1
    assert "not lenet5 on fashion-mnist" in one_line_error(capsys)
    assert train(data_dir, out, "--resume", "--lr", "0.5") == 1
    assert "--lr 0.5 differs from the saved 0.05" in one_line_error(capsys)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "checkpoint.npz").write_bytes(b"not a zip file")
    assert train(data_dir, tmp_path / "junk", "--resume") == 1
    assert "is not a readable checkpoint" in one_line_error(capsys)
    np.savez(tmp_path / "foreign.npz", meta=np.frombuffer(b'{"format": "other"}', np.uint8))
    with pytest.raises(CheckpointError, match="not a checkpoint written by zoo.train"):
        load_checkpoint(tmp_path / "foreign.npz")


def test_missing_data_is_a_short_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()    # a --data-dir that does not exist is its own error (tests/faults)
    assert cli(train_cli, ["lenet5", "mnist", "--data-dir", tmp_path / "empty", "--no-download",
                           "--out", tmp_path / "run"]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: dataset 'mnist' (train split): files not found.")
    assert "Traceback" not in captured.err and not (tmp_path / "run").exists()


@pytest.mark.skipif(gpu_available(), reason="a GPU is present")
def test_cuda_unavailable(data_dir, tmp_path, capsys):
    assert train(data_dir, tmp_path / "run", "--device", "cuda") == 1
    assert "cuda is not available" in one_line_error(capsys)


def test_evaluate_bad_input(data_dir, tmp_path, capsys):
    assert cli(evaluate_cli, [tmp_path / "nowhere"]) == 1
    assert "no checkpoint at" in one_line_error(capsys)
    out = tmp_path / "run"
    assert train(data_dir, out, "--epochs", "1", "--limit-train", "16", "--aux-weight", "0.3") == 0
    assert "warning: --aux-weight only applies to googlenet; ignored for lenet5" in capsys.readouterr().err
    assert cli(evaluate_cli, [out, "--dataset", "cifar10", "--verify", "structure"]) == 1
    assert "the model takes 1-channel images but cifar10 has 3 channel(s)" in one_line_error(capsys)
    assert cli(evaluate_cli, [out, "--dataset", "svhn"]) == 1
    assert "unknown dataset 'svhn'" in one_line_error(capsys)
    assert cli(evaluate_cli, [out, "--batch-size", "0"]) == 2
    assert "--batch-size: expected an integer >= 1" in one_line_error(capsys)
    # Another dataset with the same shapes is fine.
    assert cli(evaluate_cli, [out, "--dataset", "fashion-mnist", "--verify", "structure"]) == 0
    assert "test set       fashion-mnist, 20 images" in capsys.readouterr().out


# ----------------------------------------------------------------------------- the library under the command line

def test_train_config_and_train_without_a_command_line(data_dir, tmp_path, tiny_models, capsys):
    """zoo.run is what zoo.train and the studies call: a TrainConfig (new or resumed) and train(config)."""
    from zoo.run import TrainConfig, UsageError
    from zoo.run import train as run_training
    data = {"data_dir": str(data_dir), "verify": "structure", "download": False}
    config = TrainConfig.new("tinydrop", "mnist", out=str(tmp_path / "run"), epochs=1, limit_train=16, limit_test=20,
                             batch_size=16, **data)
    recipe = zoo.MODELS["lenet5"].recipe
    assert (config.optimizer, config.lr, config.momentum, config.schedule) == ("sgd", recipe["lr"], 0.9, "cosine")
    result = run_training(config)
    assert (result.status, result.exit_status, result.last["epoch"]) == ("done", 0, 1)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert {k: v for k, v in saved.items() if k not in ("invocations", "versions")} == config.to_dict()
    again = TrainConfig.resumed(tmp_path / "run", epochs=2)
    assert again.resume and (again.model, again.dataset, again.epochs, again.batch_size) == ("tinydrop", "mnist", 2, 16)
    assert run_training(again).last["epoch"] == 2
    with pytest.raises(UsageError, match="--batch-size 8 differs from the saved 16"):
        TrainConfig.resumed(tmp_path / "run", batch_size=8)
    with pytest.raises(UsageError, match=r"argument --lr: expected a number > 0, got -1"):
        TrainConfig.new("lenet5", "mnist", lr=-1)
    with pytest.raises(UsageError, match="augment takes true or false"):
        TrainConfig.new("lenet5", "cifar10", augment="no")
    with pytest.raises(UsageError, match="unknown option 'learning_rate'"):
        TrainConfig.new("lenet5", "mnist", learning_rate=0.1)
