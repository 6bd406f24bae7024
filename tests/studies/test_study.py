"""Studies (``python -m zoo.study``) and what ablations keep (``ablate``) on tiny generated data; the --ablate
command line's errors and the pooling ablation are in tests/run/test_ablate_init.py.

Two tiny registered models keep every study run under a second; the generated MNIST-format files come
from tests/run/test_train.py. Every command runs in-process through ``main(argv)``.
"""
import argparse
import csv
import json
import os
import signal
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from support.formats import write_mnist

import minitorch_cnn as mt
import zoo
from minitorch_cnn import nn
from minitorch_cnn.data import datasets as datasets_module
from zoo import study
from zoo import train as train_cli
from zoo.run import trainer
from zoo.run.ablate import AblationError, ablate
from zoo.run.checkpoint import load_checkpoint
from zoo.studies import spec as study_spec
from zoo.studies.report import read_metrics
from zoo.summary import layer_table

TIMING = ("epoch_seconds", "train_images_per_s")


class TinyPool(nn.Module):
    """conv -> ReLU -> max pool -> a Linear sized for the pooled maps (so removing the pool breaks it)."""

    def __init__(self, in_channels=1, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(OrderedDict([
            ("conv", nn.Conv2d(in_channels, 4, 3, stride=2)), ("relu", nn.ReLU()), ("pool", nn.MaxPool2d(2)),
            ("flatten", nn.Flatten()), ("fc", nn.Linear(4 * 7 * 7, num_classes))]))

    def forward(self, x):
        return self.net(x)


class TinyNorm(nn.Module):
    """With batch norm and a residual stage that can go as a whole (``block``) and dropout (random state)."""

    def __init__(self, in_channels=1, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 4, 3, stride=4, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(4 * 8 * 8, num_classes))

    def forward(self, x):
        return self.head(self.block(self.stem(x)))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_mnist(root / "mnist")
    return root


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.delenv("MINITORCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setattr(datasets_module, "SYSTEM_ROOTS", {})
    for name, cls in (("tinypool", TinyPool), ("tinynorm", TinyNorm)):
        monkeypatch.setitem(zoo.MODELS, name, replace(zoo.MODELS["lenet5"], name=name, builder=cls))


@pytest.fixture
def no_run_plots(monkeypatch):
    """Drawing PNGs is most of a tiny run's time; the tests that do not look at them skip it."""
    for name in ("plot_curves", "plot_confusion"):
        monkeypatch.setattr(trainer, name, lambda *args, **kwargs: None)


@pytest.fixture
def no_plots(monkeypatch, no_run_plots):
    from zoo.studies import report as study_report
    for name in ("plot_study_curves", "plot_error_vs_time"):
        monkeypatch.setattr(study_report, name, lambda *args, **kwargs: None)


def cli(module, argv):
    try:
        return module.main([str(a) for a in argv])
    except SystemExit as exit_:
        return exit_.code


SPEC = """
name = "tiny"
description = "Two tiny models x two optimizers, and one run that cannot work."
[defaults]
dataset = "mnist"
verify = "structure"
download = false
batch-size = 16
limit_test = 20
[protocol.cpu]
epochs = 2
limit-train = 40
[protocol.full]
epochs = 3
[[runs]]
name = "no-fc"
model = "tinypool"
ablate = ["net.fc"]
[grid]
model = ["tinypool", "tinynorm"]
optimizer = ["sgd", "adam"]
"""
RUNS = ["no-fc", "tinypool-sgd", "tinypool-adam", "tinynorm-sgd", "tinynorm-adam"]


def write_spec(tmp_path, text=SPEC):
    path = tmp_path / "tiny.toml"
    path.write_text(text)
    return path


def interrupt_at(monkeypatch, batch):
    """A real Ctrl-C (SIGINT) just before the ``batch``-th training batch of the process, counting from 1."""
    calls = {"n": 0}
    originals = {cls: cls.forward for cls in (TinyPool, TinyNorm)}

    def wrap(cls):
        def forward(self, x):
            if self.training and x.shape[0] > 2:          # not the ablation's two-image shape check
                calls["n"] += 1
                if calls["n"] == batch:
                    os.kill(os.getpid(), signal.SIGINT)
            return originals[cls](self, x)
        return forward

    for cls in originals:
        monkeypatch.setattr(cls, "forward", wrap(cls))
    return lambda: [monkeypatch.setattr(cls, "forward", f) for cls, f in originals.items()]


def table(report_text, drop=(), which=0):
    """The report's ``which``-th table (0: the runs) as {first cell: {header: cell}}, without ``drop``."""
    blocks, previous = [], False
    for line in report_text.splitlines():
        if line.startswith("|"):
            if not previous:
                blocks.append([])
            blocks[-1].append(line)
        previous = line.startswith("|")
    lines = blocks[which]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    return {r[0]: {h: c for h, c in zip(header, r) if h not in drop} for r in rows}


def without_timing(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def test_study_interrupted_resumed_skipped_failed(data_dir, tmp_path, monkeypatch, capsys, no_plots):
    spec = write_spec(tmp_path)
    run = ["--data-dir", data_dir]
    # Straight through: the ablated run fails before training, the four others complete (exit 1: a failure).
    assert cli(study, [spec, "--out", tmp_path / "straight", *run]) == 1
    err = capsys.readouterr().err
    assert "no-fc failed" in err and "going on with the others" in err

    # Interrupted by Ctrl-C in tinypool-adam's first epoch (3 batches per epoch, 6 per run).
    restore = interrupt_at(monkeypatch, 8)
    cut = tmp_path / "cut"
    assert cli(study, [spec, "--out", cut, *run]) == 130
    record = json.loads((cut / "study.json").read_text())
    assert [(r["name"], r["status"]) for r in record["runs"]] == [
        ("no-fc", "failed"), ("tinypool-sgd", "done"), ("tinypool-adam", "interrupted"),
        ("tinynorm-sgd", "not run"), ("tinynorm-adam", "not run")]
    position = load_checkpoint(cut / "tinypool-adam")[0]["position"]
    assert (position["epoch"], position["batch"]) == (0, 2)
    assert "tinypool-sgd" in table((cut / "report.md").read_text())      # the report after each run
    finished = (cut / "tinypool-sgd" / "metrics.csv").stat().st_mtime_ns
    capsys.readouterr()

    restore()
    assert cli(study, [spec, "--out", cut, *run]) == 1
    out = capsys.readouterr().out
    assert "tinypool-sgd: already complete, skipped" in out
    assert (cut / "tinypool-sgd" / "metrics.csv").stat().st_mtime_ns == finished
    resumed = json.loads((cut / "tinypool-adam" / "config.json").read_text())["invocations"]
    assert len(resumed) == 2 and "--resume" in resumed[1]["argv"] and resumed[1]["from_batch"] == 2

    # Interrupted and resumed == straight through: every run's metrics (bitwise resume) and the report table.
    for name in RUNS[1:]:
        assert without_timing(read_metrics(cut / name)) == without_timing(read_metrics(tmp_path / "straight" / name))
    timing = ("wall time (s)", "images/s")
    straight_report, cut_report = (tmp_path / "straight" / "report.md").read_text(), (cut / "report.md").read_text()
    assert table(cut_report, timing) == table(straight_report, timing)
    assert list(table(cut_report)) == RUNS
    failure = table(cut_report)["no-fc"]["status"]
    assert failure.startswith("failed: --ablate net.fc: the model's output would change from (10,) to (196,)")
    assert "- `no-fc`: --ablate net.fc" in cut_report

    # A third invocation trains nothing, and keeps when the skipped runs finished and how long they took.
    before = {r["name"]: r for r in json.loads((cut / "study.json").read_text())["runs"]}
    assert cli(study, [spec, "--out", cut, *run, "--only", "tinypool-sgd", "tinynorm-adam"]) == 0
    assert capsys.readouterr().out.count("already complete, skipped") == 2
    after = {r["name"]: r for r in json.loads((cut / "study.json").read_text())["runs"]}
    for name in ("tinypool-sgd", "tinynorm-adam"):
        assert (after[name]["finished"], after[name]["wall_s"]) == (before[name]["finished"], before[name]["wall_s"])


def test_study_curves_name_each_run_once_in_its_own_colour_clear_of_the_panels():
    from matplotlib.colors import to_rgba

    from zoo.run.plots import run_colours
    from zoo.studies.plots import study_curves_figure
    for n in (1, 10, 11, 14, 20, 21, 31):
        assert len({to_rgba(c) for c in run_colours(n)}) == n, n
    history = [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.5, "test_loss": 1.2 / e, "test_top1_err": 0.5,
                "test_top5_err": 0.1, "train_top5_err": 0.1} for e in (1, 2, 3)]
    for n in (2, 14, 28):
        fig, plt = study_curves_figure([(f"run{i}", history) for i in range(n)], "study t")
        renderer = fig.canvas.get_renderer()
        fig.canvas.draw()
        legend = fig.legends[0]
        assert [t.get_text() for t in legend.get_texts()] == [f"run{i}" for i in range(n)] + ["train", "test"]
        top = legend.get_window_extent(renderer).y1
        assert all(top < ax.get_tightbbox(renderer).y0 for ax in fig.axes), n
        assert fig.axes[0].get_yscale() == "linear"
        plt.close(fig)
    diverged = [{**h, "test_loss": 1e4} for h in history]      # one run's loss 10,000x the other's
    fig, plt = study_curves_figure([("ok", history), ("diverged", diverged)], "study t")
    assert fig.axes[0].get_yscale() == "log" and fig.axes[1].get_yscale() == "linear"
    plt.close(fig)


def test_report_numbers_are_the_metrics_and_rebuild_from_folders(data_dir, tmp_path, no_run_plots):
    spec = write_spec(tmp_path)
    out = tmp_path / "s"
    assert cli(study, [spec, "--out", out, "--data-dir", data_dir, "--only", "tinypool-sgd", "tinynorm-adam"]) == 0
    report = (out / "report.md").read_text()
    rows = table(report)
    with open(out / "results.csv", newline="") as f:
        results = {r["run"]: r for r in csv.DictReader(f)}
    for name in ("tinypool-sgd", "tinynorm-adam"):
        metrics = read_metrics(out / name)
        last, row, exact = metrics[-1], rows[name], results[name]
        assert row["final top-1 err"] == f"{100 * last['test_top1_err']:.2f} %"
        assert row["best top-1 err"] == f"{100 * min(m['test_top1_err'] for m in metrics):.2f} %"
        assert row["top-5 err"] == f"{100 * last['test_top5_err']:.2f} %"
        assert row["test loss"] == f"{last['test_loss']:.4f}"
        assert row["epochs"] == "2/2" and row["status"] == "done"
        assert row["wall time (s)"] == f"{sum(m['epoch_seconds'] for m in metrics):.1f}"
        assert float(exact["final_top1_err"]) == last["test_top1_err"]
        assert float(exact["final_test_loss"]) == last["test_loss"]
        model = zoo.get_model(name.split("-")[0], in_channels=1)
        assert int(exact["params"]) == layer_table(model, (1, 32, 32))[1]["total"]
    assert rows["no-fc"]["status"] == "not run"
    for png in ("curves.png", "error_vs_time.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"

    # --report rebuilds the same files from the folders; without study.json, from the run folders alone.
    before = {p: (out / p).read_text() for p in ("report.md", "results.csv")}
    for p in before:
        (out / p).unlink()
    assert cli(study, ["--report", out]) == 0
    assert {p: (out / p).read_text() for p in before} == before
    (out / "study.json").unlink()
    assert cli(study, ["--report", out]) == 0
    alone = table((out / "report.md").read_text(), ("setting",))
    assert alone == {k: v for k, v in table(report, ("setting",)).items() if v["status"] != "not run"}


@pytest.mark.parametrize("text, message", [
    ("[defaults]\nmodle = 'lenet5'", "unknown option 'modle'"),
    ("nme = 'x'", "unknown key 'nme'"),
    ("[defaults]\ndataset='mnist'\n[[runs]]\nmodel = 'lenet5'", "every run needs a name"),
    ("[defaults]\nmodel='lenet5'\ndataset='mnist'\n[[runs]]\nname='a'\n[[runs]]\nname='a'", "two runs are named 'a'"),
    ("[defaults]\nmodel='lenet5'\ndataset='mnist'\n[[runs]]\nname='a'\nlr=-1", "run 'a': argument --lr"),
    ("[defaults]\nmodel='lenet6'\ndataset='mnist'\n[[runs]]\nname='a'", "unknown model 'lenet6'"),
    ("[defaults]\nmodel='lenet5'\ndataset='mnist'\n[[runs]]\nname='a'\naugment='no'", "augment takes true or false"),
    ("[defaults]\ndataset='mnist'\n[grid]\nmodel='lenet5'", "must be a non-empty list"),
    ("[defaults]\nmodel='lenet5'\n[[runs]]\nname='a'", "no dataset"),
    ("[defaults]\nmodel='lenet5'\ndataset='mnist'\n[protocol.gpu]\nepochs=1", "unknown protocol 'gpu'"),
    ("[defaults]\nmodel='lenet5'\ndataset='mnist'\n[[runs]]\nname='../up'", "not a plain folder name"),
    ("[defaults]\nmodel='lenet5'\ndataset='mnist'\n[[runs]]\nname='a'\nout='x'", "unknown option 'out'"),
    ("[defaults\n", "is not valid TOML"),
])
def test_bad_specs(tmp_path, capsys, text, message):
    assert cli(study, [write_spec(tmp_path, text), "--out", tmp_path / "s"]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "s").exists()                 # nothing started


def test_spec_resolution_and_bad_study_folders(data_dir, tmp_path, capsys, no_plots):
    spec = write_spec(tmp_path, SPEC + "\n[[runs]]\nname = 'own'\nmodel = 'tinynorm'\nlr = 0.2\n"
                      "protocol.cpu = { epochs = 1, label-smoothing = 0.1 }\n")
    loaded = study_spec.load_spec(spec, "cpu")
    runs = {r["name"]: r["argv"] for r in loaded["runs"]}
    assert runs["tinynorm-adam"][:2] == ["tinynorm", "mnist"] and "--no-download" in runs["tinynorm-adam"]
    assert runs["no-fc"][runs["no-fc"].index("--ablate") + 1] == "net.fc"
    own = runs["own"]          # defaults < protocol < the run < the run's protocol
    assert own[own.index("--epochs") + 1] == "1" and own[own.index("--lr") + 1] == "0.2"
    assert own[own.index("--label-smoothing") + 1] == "0.1"
    full = {r["name"]: r["argv"] for r in study_spec.load_spec(spec, "full")["runs"]}
    assert full["tinypool-sgd"][-4:] == ["--epochs", "3", "--optimizer", "sgd"] and "--limit-train" not in full["own"]

    assert cli(study, [spec, "--dry-run", "--out", tmp_path / "d", "--data-dir", data_dir]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 6 and all(line.startswith("python -m zoo.train ") for line in printed)
    assert not (tmp_path / "d").exists()

    out = tmp_path / "s"
    assert cli(study, [spec, "--out", out, "--data-dir", data_dir, "--only", "nope"]) == 1
    assert "--only: no run named 'nope'" in capsys.readouterr().err
    assert cli(study, [spec, "--out", out, "--data-dir", data_dir, "--only", "tinypool-sgd"]) == 0
    assert cli(study, [spec, "--out", out, "--protocol", "full", "--only", "tinypool-sgd"]) == 1
    assert "with the cpu protocol" in capsys.readouterr().err
    # The spec changed under a finished run: zoo.train's resume check refuses, the study records it.
    changed = write_spec(tmp_path, SPEC.replace("batch-size = 16", "batch-size = 8"))
    assert cli(study, [changed, "--out", out, "--data-dir", data_dir, "--only", "tinypool-sgd"]) == 1
    assert "--batch-size 8 differs from the saved 16" in capsys.readouterr().err
    assert cli(study, []) == 2 and cli(study, ["--report", tmp_path / "missing"]) == 1


# ----------------------------------------------------------------------------- --ablate

def train(data_dir, out, *extra, model="lenet5"):
    return cli(train_cli, [model, "mnist", "--data-dir", data_dir, "--out", out, "--verify", "structure",
                           "--no-download", "--batch-size", "16", "--limit-test", "20", "--limit-train", "40",
                           "--epochs", "1", *extra])


def test_ablate_keeps_initial_weights_statistics_and_random_state():
    mt.manual_seed(3)
    whole = TinyNorm()
    mt.manual_seed(3)
    model = TinyNorm()
    state_before = {k: v.copy() for k, v in model.state_dict().items()}
    rng = mt.get_rng_state()
    model.eval()
    ablate(model, ["block"], (1, 32, 32))
    assert isinstance(model.block, nn.Identity) and not model.training          # modes restored
    assert mt.get_rng_state() == rng                                           # dropout drew nothing for good
    assert set(state_before) - set(model.state_dict()) == {k for k in state_before if k.startswith("block.")}
    for key, value in model.state_dict().items():                             # BN statistics untouched
        assert np.array_equal(value, state_before[key]) and np.array_equal(value, whole.state_dict()[key]), key
    with pytest.raises(AblationError, match=r"stem turns \(1, 32, 32\) into \(4, 8, 8\)"):
        ablate(TinyNorm(), ["stem"], (1, 32, 32))


# ----------------------------------------------------------------------------- learning parity (benchmarks/)

def test_learning_parity_quick(data_dir, tmp_path, monkeypatch):
    pytest.importorskip("torch", reason="the learning-parity check compares against PyTorch (dev extra)")
    from benchmarks import learning_parity
    monkeypatch.setattr(learning_parity, "plot", lambda *args: None)
    results = learning_parity.main(["--quick", "--pairs", "lenet5:mnist", "--verify", "structure",
                                    "--data-dir", str(data_dir), "--out", str(tmp_path)])
    ours, twin = results[0]["history"]["minitorch"], results[0]["history"]["torch"]
    assert len(ours) == len(twin) == 2
    for a, b in zip(ours, twin):      # 8 SGD steps with momentum, weight decay and the cosine schedule
        for key in ("train_loss", "test_loss"):
            assert a[key] == pytest.approx(b[key], rel=1e-4), key
        assert a["test_top1_err"] == b["test_top1_err"]
    assert ours[-1]["train_loss"] < ours[0]["train_loss"] * 1.01     # it is training, not standing still
    table = (tmp_path / "learning_parity.md").read_text()
    assert table.count("| lenet5 | mnist | 48 / 20 | 2 | 16 | 0.05 |") == 2     # the recipe's lr
    assert results[0]["recipe"]["lr"] == 0.05


def test_learning_parity_takes_another_learning_rate():
    from benchmarks import learning_parity
    args = argparse.Namespace(epochs=1, batch_size=None, lr=0.01)
    assert learning_parity.recipe("resnet18", "cifar10", args)["lr"] == 0.01
    args.lr = None
    assert learning_parity.recipe("resnet18", "cifar10", args)["lr"] == 0.1


# ----------------------------------------------------------------------------- options the shipped studies use

def test_shipped_studies_resolve(tmp_path):
    """Every spec in zoo/studies parses, and every run's options make a TrainConfig; the three original ones
    have the runs counted here (newer specs, e.g. of issue 23, are checked only for resolving)."""
    counts = {}
    for spec in sorted((Path(zoo.__file__).parent / "studies").glob("*.toml")):
        for protocol in ("cpu", "full"):
            runs = study_spec.load_spec(spec, protocol)["runs"]
            counts[spec.stem, protocol] = len(runs)
            for run in runs:
                config = study_spec.train_config(run, tmp_path / run["name"])
                assert config.epochs >= 1, run["name"]
    expected = {("ablation", "cpu"): 18, ("ablation", "full"): 18, ("architectures", "cpu"): 14,
                ("architectures", "full"): 14, ("optimizers", "cpu"): 14, ("optimizers", "full"): 14}
    assert {k: v for k, v in counts.items() if k in expected} == expected
    assert all(counts.values())


def test_nesterov_and_main_weight(data_dir, tmp_path, no_plots):
    from minitorch_cnn import functional as F
    from zoo.run.recipe import make_loss, make_optimizer
    assert train(data_dir, tmp_path / "n", "--optimizer", "sgd", "--momentum", "0.9", "--nesterov") == 0
    config = json.loads((tmp_path / "n" / "config.json").read_text())
    assert config["nesterov"] is True
    params = [nn.Parameter(np.ones(2, dtype=np.float32))]
    assert make_optimizer(params, config).param_groups[0]["nesterov"] is True
    assert train(data_dir, tmp_path / "m", "--momentum", "0", "--nesterov") == 1
    logits = [mt.Tensor(np.random.default_rng(i).standard_normal((4, 10)).astype(np.float32)) for i in range(3)]
    y = np.arange(4)
    loss = make_loss({"model": "googlenet", "label_smoothing": 0.0, "aux_weight": 0.3, "main_weight": 0.7})
    expected = 0.7 * F.cross_entropy(logits[0], y).item() + 0.3 * sum(F.cross_entropy(a, y).item() for a in logits[1:])
    assert loss(tuple(logits), y).item() == pytest.approx(expected, rel=1e-6)
