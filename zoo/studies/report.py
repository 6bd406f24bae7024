"""A study's report, built from its folder alone: ``python -m zoo.study --report DIR``.

DIR holds one ``zoo.train`` run folder per run and ``study.json`` (the spec's name, protocol and each run's
options and status, written by ``zoo.study``). Without ``study.json`` every sub-folder holding a
``config.json`` is a run, in name order. The report is:

    report.md          the protocol, one table row per run, failed runs with their message, the uncertainty
                       (the seeds of a configuration together: stats.py), the provenance (provenance.py),
                       the figures
    results.csv        the per-run table with unrounded numbers
    configurations.csv the uncertainty table with unrounded numbers: mean and standard deviation over the
                       seeds, the Wilson 95 % interval, distinguishable from the best
    curves.png         objective, top-1 and top-5 error per epoch: one colour per run, train dashed, test solid
    error_vs_time.png  final test top-1 error and training wall time per run, as bars
    seeds.png          with seeds: each configuration's mean curves over its seeds, a band lowest to highest
    seeds-M-D.png      the same for model M on data set D alone, when the study spans several of them

Every number comes from the run's ``metrics.csv`` (the last row is "final", the smallest test top-1 error
"best"), except the parameters and multiply-adds, which the layer table of ``zoo.summary``
(minitorch_cnn.lab.layer_table) counts on the model the run's ``config.json`` describes (with its ablation).
"""
import csv
import io
import json
from functools import lru_cache
from pathlib import Path

from minitorch_cnn.files import atomic_write_text
from minitorch_cnn.lab.layer_table import layer_table
from zoo import get_model
from zoo.run.ablate import ablate as ablate_modules
from zoo.run.report import CONFUSION_CSV, read_confusion_csv

from .plots import plot_error_vs_time, plot_seed_curves, plot_study_curves
from .provenance import provenance_section, records, run_provenance
from .stats import configuration, configuration_stats, part, uncertainty_section

STUDY_JSON, REPORT_MD, RESULTS_CSV = "study.json", "report.md", "results.csv"
CONFIGURATIONS_CSV = "configurations.csv"     # one row per configuration: its seeds together (stats.py)
STATS_COLUMNS = ("configuration", "seeds", "runs", "mean_top1_err", "std_top1_err", "test_images", "wilson_lo",
                 "wilson_hi", "vs_best")
STUDY_CURVES_PNG, ERROR_TIME_PNG, SEEDS_PNG = "curves.png", "error_vs_time.png", "seeds.png"
COLUMNS = ("run", "model", "dataset", "setting", "params", "macs", "epochs", "train_wall_s", "images_per_s",
           "final_top1_err", "best_top1_err", "final_top5_err", "final_test_loss", "status", "provenance")
HEADER = ("run", "model", "dataset", "setting", "parameters", "MACs / image", "epochs", "wall time (s)",
          "images/s", "final top-1 err", "best top-1 err", "top-5 err", "test loss", "status", "provenance")


class UnreadableRun(ValueError):
    """A run folder's config.json or metrics.csv cannot be read (corrupted, or edited by hand)."""


def read_metrics(folder):
    """metrics.csv as a list of {column: float} (empty cells, from older versions, become None);
    UnreadableRun if it is not one zoo.train wrote."""
    path = Path(folder) / "metrics.csv"
    if not path.exists():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return [{k: (float(v) if v not in ("", None) else None) for k, v in row.items()}
                    for row in csv.DictReader(f)]
    except (ValueError, TypeError, AttributeError, csv.Error) as err:   # TypeError: a row longer than the header
        raise UnreadableRun(f"{path} is unreadable ({err})") from None


def read_config(folder):
    """config.json of a run folder as a dict ({} if absent); UnreadableRun if it is not one zoo.train wrote."""
    path = Path(folder) / "config.json"
    if not path.exists():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise UnreadableRun(f"{path} is unreadable ({err})") from None
    if not isinstance(config, dict) or not isinstance(config.get("epochs", 0), int):
        raise UnreadableRun(f"{path} is not a zoo.train configuration")
    return config


@lru_cache(maxsize=64)
def model_size(model, in_channels, num_classes, ablate):
    """(parameters incl. batch-norm statistics, multiply-adds per 32x32 image), as zoo.summary counts them."""
    net = ablate_modules(get_model(model, in_channels=in_channels, num_classes=num_classes), list(ablate),
                         (in_channels, 32, 32))      # with any Linear layer the ablation adapted
    totals = layer_table(net, (in_channels, 32, 32), batch_size=1)[1]
    return totals["total"], totals["macs"]


def setting(options, config):
    """What sets this run apart: its own options from the spec (or, without study.json, its ablation)."""
    shown = {k: v for k, v in options.items() if k not in ("model", "dataset")}
    if not options and config.get("ablate"):
        shown = {"ablate": config["ablate"]}
    return ", ".join(f"{k.replace('_', '-')}={'+'.join(v) if isinstance(v, list) else v}"
                     for k, v in shown.items()) or "(defaults)"


def summarise(folder, entry):
    """One table row (unrounded) for the run in ``folder``; ``entry`` is its study.json record, if any.
    A run whose files are unreadable gets a row saying so (the other runs are still reported)."""
    try:
        config, rows = read_config(folder), read_metrics(folder)
    except UnreadableRun as err:
        entry = {**entry, "status": "failed", "message": str(err)}
        config, rows = {}, []
    row = {"run": folder.name, "model": config.get("model", ""), "dataset": config.get("dataset", ""),
           "setting": setting(entry.get("options", {}), config), "params": None, "macs": None,
           "epochs": f"{len(rows)}/{config['epochs']}" if config else "0",
           "train_wall_s": None, "images_per_s": None, "final_top1_err": None, "best_top1_err": None,
           "final_top5_err": None, "final_test_loss": None}
    if config.get("in_channels"):
        row["params"], row["macs"] = model_size(config["model"], config["in_channels"], config["num_classes"],
                                                tuple(config.get("ablate") or ()))
    if rows:
        last = rows[-1]
        row.update(train_wall_s=sum(r["epoch_seconds"] for r in rows),
                   images_per_s=sum(r["train_images_per_s"] for r in rows) / len(rows),
                   final_top1_err=last["test_top1_err"], best_top1_err=min(r["test_top1_err"] for r in rows),
                   final_top5_err=last["test_top5_err"], final_test_loss=last["test_loss"])
    budget = config.get("budget") or {}          # a --time-budget run that finished (zoo/run/budget.py)
    if budget.get("stopped"):
        used = f"{budget['train_seconds'] / 60:.1f} of " if budget.get("train_seconds") is not None else ""
        row["epochs"] = (f"{budget['epochs_seen']:.2f} in {used}{budget['minutes']:g} min ({budget['steps']:,} steps, "
                         f"stopped: {budget['stopped']})")
    finished = bool(config) and (len(rows) >= config["epochs"] or bool(budget.get("stopped")))
    status = entry.get("status") or ("done" if finished else "incomplete")
    if status == "done" and config and not finished:
        status = "incomplete"
    row["status"] = status + (f": {entry['message']}" if entry.get("message") and status != "done" else "")
    row["provenance"], row["records"] = run_provenance(config), records(config)
    row["seed"], row["test_images"] = config.get("seed"), test_images(folder, config)
    return row, rows


def test_images(folder, config):
    """How many test images the run's last evaluation counted (its confusion_matrix.csv), or None."""
    matrix = read_confusion_csv(Path(folder) / CONFUSION_CSV, config.get("num_classes") or 0) if config else None
    return None if matrix is None else int(matrix.sum())


def _cell(column, value):
    if value is None:
        return "–"
    if column.endswith("_err"):
        return f"{100 * value:.2f} %"
    if column == "final_test_loss":
        return f"{value:.4f}"
    if column == "train_wall_s":
        return f"{value:.1f}"
    if column == "images_per_s":
        return f"{value:.0f}"
    if column in ("params", "macs"):
        return f"{value:,}"
    lines = str(value).splitlines() or [""]        # a multi-line message: its first line here, all of it
    more = " (more under *Failed runs*)" if len(lines) > 1 else ""     # under "Failed runs" below the table
    return (lines[0] + more).replace("|", "\\|")


def _failure(row):
    """A failed run's message as a list item: one line inline, several (folders looked in...) as a code block."""
    message = row["status"][len("failed: "):].splitlines() or [""]
    if len(message) == 1:
        return [f"- `{row['run']}`: {message[0]}"]
    return [f"- `{row['run']}`:", "", "  ```", *(f"  {line}" for line in message), "  ```"]


def markdown_table(rows):
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_cell(c, r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def _protocol_text(record):
    if not record:
        return "Protocol: not recorded (no study.json; the table comes from the run folders alone)."
    def options(d):
        return ", ".join(f"{k.replace('_', '-')}={v}" for k, v in d.items()) or "none"
    return (f"Spec `{record['spec']}`, protocol **{record['protocol']}**. Options for every run: "
            f"{options(record['defaults'])}; the protocol's overrides: {options(record['overrides'])}. "
            "A run's own options (column *setting*) override both.")


def read_record(out):
    """study.json in ``out`` as a dict ({} if absent); UnreadableRun if it is corrupt."""
    path = Path(out) / STUDY_JSON
    if not path.exists():
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise UnreadableRun(f"{path} is unreadable ({err}); move it aside to start the study record afresh "
                            "(the run folders are kept and resumed)") from None
    if not isinstance(record, dict) or not isinstance(record.get("runs", []), list):
        raise UnreadableRun(f"{path} is not a study record written by zoo.study; move it aside")
    return record


def write_csv(path, columns, rows):
    """``rows`` (dicts; other keys ignored) as a CSV of ``columns``, written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def seed_groups(table, histories):
    """[(configuration, [history of each seed])] when some configuration has several seeds, else []."""
    groups = {}
    for row in table:
        if histories.get(row["run"]):
            groups.setdefault(configuration(row["run"], row.get("seed")), []).append(histories[row["run"]])
    return list(groups.items()) if any(len(h) > 1 for h in groups.values()) else []


def seed_figures(table, histories):
    """{file name: seed groups}: seeds.png with every configuration and, when the study spans several models
    or data sets, one ``seeds-<model>-<dataset>.png`` per part, so that each ablation is drawn against its
    own baseline on its own scale."""
    groups = seed_groups(table, histories)
    if not groups:
        return {}
    part_of = {configuration(r["run"], r.get("seed")): "-".join(map(str, part(r))) for r in table}   # stats.part
    parts = list(dict.fromkeys(part_of[name] for name, _ in groups))
    figures = {SEEDS_PNG: groups}
    if len(parts) > 1:
        figures.update({f"seeds-{p}.png": [g for g in groups if part_of[g[0]] == p] for p in parts})
    return figures


def write_report(out):
    """(Re)write report.md, results.csv and the two figures of the study in ``out``; returns report.md's path."""
    out = Path(out)
    record = read_record(out)
    entries = record.get("runs") or [{"name": p.parent.name} for p in sorted(out.glob("*/config.json"))]
    table, curves = [], []
    for entry in entries:
        row, history = summarise(out / entry["name"], entry)
        table.append(row)
        if history:
            curves.append((row["run"], history))
    name = record.get("name", out.name)
    write_csv(out / RESULTS_CSV, COLUMNS, table)
    stats = configuration_stats(table)
    write_csv(out / CONFIGURATIONS_CSV, STATS_COLUMNS, stats)
    plot_study_curves(out / STUDY_CURVES_PNG, curves, f"study {name}")
    plot_error_vs_time(out / ERROR_TIME_PNG, [r for r in table if r["final_top1_err"] is not None], f"study {name}")
    seeded = seed_figures(table, dict(curves))
    for figure, groups in seeded.items():
        part = figure[len("seeds-"):-len(".png")] if figure != SEEDS_PNG else ""
        plot_seed_curves(out / figure, groups, f"study {name}" + (f", {part}" if part else ""))
    failed = [r for r in table if r["status"].startswith("failed")]
    text = [f"# Study: {name}", ""]
    if record.get("description"):
        text += [record["description"].strip(), ""]
    text += [_protocol_text(record), "",
             "Final = after the last epoch; best = the lowest test top-1 error of any epoch; wall time = the sum "
             "of the epochs' training and test passes; images/s = training images per second, mean over epochs; "
             "parameters include batch-norm statistics; MACs = multiply-adds per 32x32 image (zoo.summary). "
             "A --time-budget run's epochs are the epochs' worth of images it saw in its minutes of training, and "
             "its final error is over the whole test set.", "",
             markdown_table(table), "", *uncertainty_section(stats), "", *provenance_section(table), ""]
    if failed:
        text += ["Failed runs:", ""] + [line for r in failed for line in _failure(r)] + [""]
    text += [f"![objective, top-1 and top-5 error per epoch]({STUDY_CURVES_PNG})", "",
             f"![final error and training time]({ERROR_TIME_PNG})", "",
             *[line for figure in seeded for line in
               (f"![mean over seeds per configuration, band: lowest to highest seed]({figure})", "")],
             "Rebuild with `python -m zoo.study --report DIR` (DIR: this folder).", ""]
    atomic_write_text(out / REPORT_MD, "\n".join(text))
    return out / REPORT_MD
