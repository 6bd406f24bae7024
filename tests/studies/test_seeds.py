"""Seeds in study specs (zoo/studies/spec.py) and the report's uncertainty (zoo/studies/stats.py).

The statistics are checked against values worked out by hand (below each test), the report against run
folders written here (config.json, metrics.csv, confusion_matrix.csv): nothing is trained.
"""
import csv
import json

import pytest

from zoo import study
from zoo.run.report import write_metrics_csv
from zoo.studies import report as study_report
from zoo.studies.plots import plot_seed_curves, seed_bands
from zoo.studies.report import seed_groups, write_report
from zoo.studies.spec import SpecError, load_spec
from zoo.studies.stats import configuration, configuration_stats, distinguishable, mean_std, uncertainty_section, wilson

SPEC = """
name = "seeded"
seeds = [0, 1, 2]
[defaults]
dataset = "mnist"
model = "lenet5"
[[runs]]
name = "base"
[[runs]]
name = "own"
seeds = [7]
optimizer = "adam"
[grid]
lr = [0.1, 0.01]
"""


def write(tmp_path, text):
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def cli(argv):
    try:
        return study.main([str(a) for a in argv])
    except SystemExit as exit_:
        return exit_.code


# ----------------------------------------------------------------------------- expansion

def test_seeds_expand_each_run(tmp_path):
    spec = load_spec(write(tmp_path, SPEC))
    names = [r["name"] for r in spec["runs"]]
    assert names == ["base-s0", "base-s1", "base-s2", "own-s7", "lr0.1-s0", "lr0.1-s1", "lr0.1-s2",
                     "lr0.01-s0", "lr0.01-s1", "lr0.01-s2"]
    by_name = {r["name"]: r for r in spec["runs"]}
    assert by_name["base-s2"]["options"] == {"seed": 2} and by_name["base-s2"]["argv"][-2:] == ["--seed", "2"]
    assert by_name["own-s7"]["config"]["optimizer"] == "adam" and by_name["own-s7"]["config"]["seed"] == 7
    assert spec["seeds"] == [0, 1, 2]
    # --seeds replaces the spec's lists, the run's own included
    overridden = load_spec(write(tmp_path, SPEC), seeds=[4, 5])
    assert [r["name"] for r in overridden["runs"]][:4] == ["base-s4", "base-s5", "own-s4", "own-s5"]
    # without seeds nothing changes
    plain = load_spec(write(tmp_path, SPEC.replace("seeds = [0, 1, 2]\n", "").replace("seeds = [7]\n", "")))
    assert [r["name"] for r in plain["runs"]] == ["base", "own", "lr0.1", "lr0.01"]


@pytest.mark.parametrize("change, message", [
    (("seeds = [0, 1, 2]", "seeds = 3"), "seeds must be a non-empty list of integers >= 0"),
    (("seeds = [0, 1, 2]", "seeds = [0, -1]"), "seeds must be a non-empty list of integers >= 0"),
    (("seeds = [0, 1, 2]", "seeds = [1, 1]"), "seeds lists a seed twice"),
    (("seeds = [7]", "seeds = [7]\nseed = 3"), "run 'own': seed is set and so are seeds = [7]"),
    (('model = "lenet5"', 'model = "lenet5"\nseed = 1'), "run 'base': seed is set and so are seeds"),
])
def test_bad_seeds(tmp_path, change, message):
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_spec(write(tmp_path, SPEC.replace(*change)))


def test_seeds_option(tmp_path, capsys):
    assert cli([write(tmp_path, SPEC), "--dry-run", "--seeds", "3", "--out", tmp_path / "o"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 4 and printed[0].endswith(f"--seed 3 --out {tmp_path / 'o' / 'base-s3'}")
    assert cli([write(tmp_path, SPEC), "--dry-run", "--seeds", "-1"]) == 2
    assert "--seeds" in capsys.readouterr().err


# ----------------------------------------------------------------------------- statistics

def test_wilson_interval_by_hand():
    # 50 errors in 100: z = 1.96, z^2/n = 0.038415; centre 0.5; half = 1.96/1.038415 * sqrt(0.0025 + 0.000096)
    assert wilson(0.5, 100) == pytest.approx((0.40383, 0.59617), abs=1e-5)
    # 0 errors in 10: [0, z^2 / (n + z^2)] = [0, 3.8415 / 13.8415]
    assert wilson(0.0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
    # 12 % of 1000: centre (0.12 + 0.0019207) / 1.0038415 = 0.121454, half 1.952464 * 0.0103228 = 0.020155
    assert wilson(0.12, 1000) == pytest.approx((0.10130, 0.14161), abs=1e-5)
    assert wilson(0.1, 0) == (None, None)


def test_mean_std_and_distinguishable_by_hand():
    assert mean_std([0.10, 0.12, 0.14]) == pytest.approx((0.12, 0.02))     # sqrt((0.0004 + 0 + 0.0004) / 2)
    assert mean_std([0.3]) == (0.3, None)
    a = {"mean_top1_err": 0.12, "std_top1_err": 0.02, "wilson_lo": 0.1013, "wilson_hi": 0.1416}
    far = {"mean_top1_err": 0.31, "std_top1_err": 0.01, "wilson_lo": 0.2821, "wilson_hi": 0.3393}
    near = {"mean_top1_err": 0.13, "std_top1_err": 0.02, "wilson_lo": 0.1106, "wilson_hi": 0.1523}
    assert distinguishable(a, far) and distinguishable(far, a)
    assert not distinguishable(a, near)                     # overlapping intervals
    noisy = {**far, "std_top1_err": 0.1}                    # apart, but the gap 0.19 < 2 x 0.1
    assert not distinguishable(a, noisy)
    assert configuration("base-s2", 2) == "base" and configuration("base-s2", 3) == "base-s2"
    assert configuration("s1", 1) == "s1"


def fake_run(root, name, seed, error, images=1000, epochs=1):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model": "lenet5", "dataset": "mnist", "epochs": epochs,
                                                    "seed": seed, "num_classes": 2, "invocations": []}))
    write_metrics_csv(folder / "metrics.csv", [{
        "epoch": 1, "lr": 0.1, "train_loss": 0.5, "train_acc": 0.9, "train_top5_err": 0.0, "test_loss": 0.5,
        "test_acc": 1 - error, "test_top1_err": error, "test_top5_err": 0.0, "epoch_seconds": 1.0,
        "train_images_per_s": 100.0}])
    wrong = round(error * images)
    (folder / "confusion_matrix.csv").write_text(f"true\\predicted,a,b\na,{images // 2 - wrong},{wrong}\n"
                                                 f"b,0,{images - images // 2}\n")


def test_report_groups_seeds(tmp_path, monkeypatch):
    for name in ("plot_study_curves", "plot_error_vs_time", "plot_seed_curves"):   # not what is tested here
        monkeypatch.setattr(study_report, name, lambda *args, **kwargs: None)
    for seed, (a, b, c) in enumerate([(0.10, 0.30, 0.13), (0.12, 0.31, 0.15), (0.14, 0.32, 0.11)]):
        fake_run(tmp_path, f"a-s{seed}", seed, a)
        fake_run(tmp_path, f"b-s{seed}", seed, b)
        fake_run(tmp_path, f"c-s{seed}", seed, c)
    fake_run(tmp_path, "single", 5, 0.5, images=100)
    fake_run(tmp_path, "unfinished-s0", 0, 0.01, epochs=2)       # 1 of 2 epochs: not in the statistics
    text = write_report(tmp_path).read_text()
    assert "![mean over seeds per configuration, band: lowest to highest seed](seeds.png)" in text
    assert "| a | 0 1 2 | 12.00 ± 2.00 | 10.13–14.16 | 1,000 | best |" in text
    assert "| b | 0 1 2 | 31.00 ± 1.00 | 28.21–33.93 | 1,000 | yes |" in text
    assert "| c | 0 1 2 | 13.00 ± 2.00 | 11.06–15.23 | 1,000 | no |" in text
    assert "| single | 5 | 50.00 | 40.38–59.62 | 100 | yes |" in text
    assert "| unfinished |" not in text and "| unfinished-s0 |" in text           # in the runs' table only
    assert "Differences that exceed both noises: a < b; a < single; c < b; c < single; b < single." in text
    with open(tmp_path / "configurations.csv", newline="") as f:
        rows = {r["configuration"]: r for r in csv.DictReader(f)}
    assert float(rows["b"]["mean_top1_err"]) == pytest.approx(0.31)
    assert float(rows["b"]["std_top1_err"]) == pytest.approx(0.01)
    assert float(rows["a"]["wilson_hi"]) == pytest.approx(0.141609, abs=1e-6)
    assert rows["single"]["std_top1_err"] == "" and rows["single"]["test_images"] == "100"
    stats = configuration_stats([{"run": "x", "final_top1_err": None}])
    assert stats == []


def test_seed_bands_and_figure(tmp_path):
    def history(*errors):
        return [{"epoch": i + 1, "train_loss": 1.0, "train_acc": 0.5, "test_loss": 1.0, "test_top1_err": e,
                 "test_top5_err": 0.0, "train_top5_err": 0.0} for i, e in enumerate(errors)]
    seeds = [history(0.5, 0.2, 0.1), history(0.3, 0.4), history(0.4, 0.3, 0.2)]
    epochs, mean, low, high = seed_bands(seeds, "test_top1_err")       # over the 2 epochs all three reached
    assert epochs == [1, 2] and mean == pytest.approx([40.0, 30.0])
    assert (low, high) == (pytest.approx([30.0, 20.0]), pytest.approx([50.0, 40.0]))
    assert seed_bands([history(0.1), [{"epoch": 1, "train_acc": 0.5}]], "test_top1_err") is None
    table = [{"run": "a-s0", "seed": 0}, {"run": "a-s1", "seed": 1}, {"run": "b", "seed": 0}]
    groups = seed_groups(table, {"a-s0": seeds[0], "a-s1": seeds[1], "b": seeds[2]})
    assert [(name, len(h)) for name, h in groups] == [("a", 2), ("b", 1)]
    assert seed_groups(table[2:], {"b": seeds[2]}) == []                 # no configuration with several seeds
    plot_seed_curves(tmp_path / "seeds.png", groups, "test")
    assert (tmp_path / "seeds.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_parts_are_compared_and_drawn_apart(tmp_path, monkeypatch):
    """An ablation is judged against its own baseline: a VGG-16 row is never 'worse than' LeNet-5's best."""
    drawn = []
    monkeypatch.setattr(study_report, "plot_study_curves", lambda *args, **kwargs: None)
    monkeypatch.setattr(study_report, "plot_error_vs_time", lambda *args, **kwargs: None)
    monkeypatch.setattr(study_report, "plot_seed_curves", lambda path, groups, title: drawn.append(
        (path.name, [name for name, _ in groups], title)))
    table = [{"run": f"{name}-s{seed}", "seed": seed, "model": model, "dataset": data, "final_top1_err": err,
              "test_images": 10000, "status": "done"}
             for name, model, data, err in [("lenet", "lenet5", "mnist", 0.02), ("vgg", "vgg16", "cifar10", 0.7),
                                            ("vgg-bn", "vgg16", "cifar10", 0.5)] for seed in (0, 1)]
    stats = {s["configuration"]: s["vs_best"] for s in configuration_stats(table)}
    assert stats == {"lenet": "best", "vgg-bn": "best", "vgg": "yes"}
    assert "lenet < vgg" not in " ".join(uncertainty_section(configuration_stats(table)))
    for seed, err in ((0, 0.02), (1, 0.03)):
        fake_run(tmp_path, f"a-s{seed}", seed, err)
    text = write_report(tmp_path).read_text()
    assert [d[0] for d in drawn] == ["seeds.png"] and "(seeds.png)" in text    # one part: one figure
    figures = study_report.seed_figures(table, {r["run"]: [{"epoch": 1}] for r in table})
    assert list(figures) == ["seeds.png", "seeds-lenet5-mnist.png", "seeds-vgg16-cifar10.png"]
    assert [name for name, _ in figures["seeds-vgg16-cifar10.png"]] == ["vgg", "vgg-bn"]
