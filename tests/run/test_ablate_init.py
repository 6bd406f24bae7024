"""``--ablate`` (zoo/run/ablate.py: its errors, and the pooling ablation that keeps shapes valid) and ``--init``
(zoo/models/init.py).

LeNet-5 without a pooling stage: its first Linear layer is replaced by one taking the new number of features,
every other layer keeping the initial weights of the whole model. Runs are one epoch on 40 generated images.
"""
import json
import math

import numpy as np
import pytest
from support.formats import write_mnist
from support.isolation import isolate_from_user_data

import minitorch_cnn as mt
import zoo
from minitorch_cnn import nn
from zoo import evaluate as evaluate_cli
from zoo import train as train_cli
from zoo.models.init import initialise
from zoo.run import TrainConfig, UsageError, trainer
from zoo.run.ablate import ablate
from zoo.run.checkpoint import load_checkpoint
from zoo.studies import report as study_report

FAST = ["--verify", "structure", "--no-download", "--batch-size", "16", "--limit-test", "20", "--limit-train", "40",
        "--epochs", "1"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_mnist(root / "mnist")
    return root


@pytest.fixture(autouse=True)
def setup(tmp_path, monkeypatch):
    isolate_from_user_data(tmp_path, monkeypatch)
    for name in ("plot_curves", "plot_confusion"):
        monkeypatch.setattr(trainer, name, lambda *args, **kwargs: None)


def train(data_dir, out, *extra):
    try:
        return train_cli.main([str(a) for a in ["lenet5", "mnist", "--data-dir", data_dir, "--out", out, *FAST,
                                                 *extra]])
    except SystemExit as exit_:
        return exit_.code


def lenet(seed=0):
    mt.manual_seed(seed)
    return zoo.get_model("lenet5", in_channels=1)


# ----------------------------------------------------------------------------- pooling ablation

@pytest.mark.parametrize("names, features", [(["features.pool1"], 16 * 12 * 12),     # conv2 sees 14 -> 28
                                             (["features.pool2"], 16 * 10 * 10),
                                             (["features.pool1", "features.pool2"], 16 * 24 * 24)])
def test_removed_pooling_adapts_the_first_linear(names, features):
    whole, model, notes = lenet(), lenet(), []
    rng = mt.get_rng_state()
    ablate(model, names, (1, 32, 32), notes)
    assert mt.get_rng_state() == rng
    assert all(isinstance(dict(model.named_modules())[n], nn.Identity) for n in names)
    fc1 = model.classifier.fc1
    assert (fc1.in_features, fc1.out_features) == (features, 120) and fc1.weight.shape == (120, features)
    assert notes == [f"--ablate: classifier.fc1 now takes {features:,} features instead of 400 (re-initialised: "
                     f"48,000 -> {features * 120:,} weights)"]
    bound = 1 / math.sqrt(features)                     # PyTorch's default init for the new fan-in
    assert np.abs(fc1.weight.numpy()).max() <= bound and np.abs(fc1.weight.numpy()).max() > bound / 2
    kept = whole.state_dict()
    for key, value in model.state_dict().items():       # every other layer: the whole model's initial weights
        if not key.startswith("classifier.fc1."):
            assert np.array_equal(value, kept[key]), key
    assert model(mt.Tensor(np.zeros((3, 1, 32, 32), np.float32))).shape == (3, 10)


def test_pooling_ablation_trains_evaluates_and_reports(data_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "study" / "no-pool1"
    assert train(data_dir, out, "--ablate", "features.pool1") == 0
    printed = capsys.readouterr().out
    assert "--ablate: classifier.fc1 now takes 2,304 features instead of 400" in printed
    config = json.loads((out / "config.json").read_text())
    assert config["ablation_adapted"] == [line for line in printed.splitlines() if line.startswith("--ablate:")]
    assert load_checkpoint(out)[1]["classifier.fc1.weight"].shape == (120, 2304)
    assert evaluate_cli.main([str(out), "--verify", "structure", "--limit-test", "20"]) == 0   # rebuilt adapted
    for name in ("plot_study_curves", "plot_error_vs_time"):
        monkeypatch.setattr(study_report, name, lambda *args, **kwargs: None)
    report = study_report.write_report(out.parent).read_text()
    params = sum(v.size for v in load_checkpoint(out)[1].values())
    assert f"| {params:,} |" in report and params > 2304 * 120


@pytest.mark.parametrize("names, status, message", [
    ("features.conv1", 1, "--ablate features.conv1: features.conv1 turns (1, 32, 32) into (6, 28, 28); without "
                          "it (1, 32, 32) flows on and features.conv2 cannot take it"),
    ("classifier.fc3", 1, "the model's output would change from (10,) to (84,)"),
    ("features.relu9", 1, "LeNet5 has no module 'features.relu9' (its top-level modules: features, flatten"),
    ("features,features.relu1", 1, "'features.relu1' lies inside 'features'"),
    ("features.relu1,features.relu1", 1, "'features.relu1' is named twice"),
    ("features.relu1,,", 2, "expected module names separated by commas"),
])
def test_ablate_errors(data_dir, tmp_path, capsys, names, status, message):
    assert train(data_dir, tmp_path / "run", "--ablate", names) == status
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoint.npz").exists()        # refused before any training


def test_ablate_trains_records_and_evaluates(data_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert train(data_dir, out, "--ablate", "features.relu1,classifier.relu3") == 0
    config = json.loads((out / "config.json").read_text())
    assert config["ablate"] == ["features.relu1", "classifier.relu3"]
    meta, weights, _ = load_checkpoint(out)
    assert meta["config"]["ablate"] == config["ablate"]
    assert evaluate_cli.main([str(out), "--verify", "structure", "--limit-test", "20"]) == 0   # rebuilt ablated
    assert train(data_dir, out, "--resume", "--epochs", "2") == 0     # the last --epochs counts
    assert train(data_dir, out, "--resume", "--epochs", "3", "--ablate", "features.relu1") == 1
    assert "--ablate ['features.relu1'] differs from the saved" in capsys.readouterr().err
    # The default run folder names the ablation.
    monkeypatch.chdir(tmp_path)
    assert train_cli.main(["lenet5", "mnist", "--data-dir", str(data_dir), *FAST, "--ablate", "features.relu1"]) == 0
    assert [p.name.startswith("lenet5-mnist-without-features.relu1-") for p in (tmp_path / "runs").iterdir()] == [True]


# ----------------------------------------------------------------------------- --init

def test_kaiming_init_is_fan_out_normal_for_every_conv():
    """MobileNet v1: ordinary and depthwise convs (fan_out = out_channels x kh x kw, as torch counts it)."""
    mt.manual_seed(0)
    default = zoo.get_model("mobilenet_v1")
    mt.manual_seed(0)
    model = initialise(zoo.get_model("mobilenet_v1"), "kaiming")
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 27 and any(m.groups > 1 for _, m in convs)
    for name, conv in convs:
        w = conv.weight.numpy()
        fan_out = w.shape[0] * w.shape[2] * w.shape[3]
        assert w.std() == pytest.approx(math.sqrt(2 / fan_out), rel=0.05 if w.size > 10_000 else 0.2), name
        assert conv.bias is None or not conv.bias.numpy().any()
    kept = {k: v for k, v in default.state_dict().items() if not any(k.startswith(n + ".") for n, _ in convs)}
    assert kept and all(np.array_equal(v, model.state_dict()[k]) for k, v in kept.items())  # BN, Linear: as built
    mt.manual_seed(0)
    assert all(np.array_equal(v, default.state_dict()[k])                                  # default: as built
               for k, v in initialise(zoo.get_model("mobilenet_v1"), "default").state_dict().items())
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        initialise(model, "xavier")


def test_init_option(data_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "kaiming"
    assert train(data_dir, out, "--init", "kaiming") == 0
    config = json.loads((out / "config.json").read_text())
    assert config["init"] == "kaiming"
    mt.manual_seed(0)
    expected = initialise(zoo.get_model("lenet5", in_channels=1), "kaiming").state_dict()["features.conv1.weight"]
    capsys.readouterr()
    with pytest.raises(UsageError, match="--init default differs from the saved kaiming"):
        TrainConfig.resumed(str(out), init="default")
    assert train(data_dir, tmp_path / "bad", "--init", "xavier") == 2
    assert "invalid choice: 'xavier'" in capsys.readouterr().err
    # a run starts from exactly those weights (prepared, not trained)
    fresh = TrainConfig.new("lenet5", "mnist", out=str(tmp_path / "fresh"), init="kaiming", data_dir=str(data_dir),
                            verify="structure", download=False, limit_train=40, limit_test=20)
    run = trainer.prepare(fresh, mt.device("cpu"))
    assert np.array_equal(run.model.state_dict()["features.conv1.weight"], expected)
    monkeypatch.chdir(tmp_path)
    assert train_cli.main(["lenet5", "mnist", "--data-dir", str(data_dir), *FAST, "--init", "kaiming"]) == 0
    assert [p.name.startswith("lenet5-mnist-kaiming-") for p in (tmp_path / "runs").iterdir()] == [True]
    assert TrainConfig.from_dict({k: v for k, v in config.items() if k != "init"}).init == "default"  # old runs


def test_tf32_option_is_recorded_and_set_while_training(data_dir, tmp_path, monkeypatch):
    seen = []
    real_prepare = trainer.prepare

    def prepare(config, device):                 # what the framework's switch says while the run is built
        seen.append(mt.Config.allow_tf32)
        return real_prepare(config, device)
    monkeypatch.setattr(trainer, "prepare", prepare)
    out = tmp_path / "tf32"
    assert train(data_dir, out, "--tf32") == 0
    assert json.loads((out / "config.json").read_text())["tf32"] is True and seen == [True]
    assert mt.Config.allow_tf32 is False         # restored after the run
    resumed = TrainConfig.resumed(str(out), epochs=2)            # kept on resume; may be switched off
    assert resumed.tf32 is True and TrainConfig.resumed(str(out), tf32=False).tf32 is False
    assert TrainConfig.from_dict({k: v for k, v in resumed.to_dict().items() if k != "tf32"}).tf32 is False
