"""What a run leaves for a student to open: config.json, metrics.csv, PNG plots, printed summaries.

Plots use matplotlib's non-interactive Agg backend (no window, works over ssh and in CI). matplotlib
(a dependency) is imported only when a plot is drawn, so the command lines start quickly.
"""
import csv
import io
import json
import math

from .checkpoint import atomic_write, atomic_write_text

METRICS_FIELDS = ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "test_top1_err",
                  "test_top5_err", "epoch_seconds", "train_images_per_s", "train_top5_err")
CURVES_PNG, CONFUSION_PNG, CONFUSION_CSV = "curves.png", "confusion_matrix.png", "confusion_matrix.csv"


def write_json(path, document):
    atomic_write_text(path, json.dumps(document, indent=2) + "\n")


def write_metrics_csv(path, history):
    """One row per completed epoch, rewritten whole each time (it always matches the checkpoint)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRICS_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: row.get(k, "") for k in METRICS_FIELDS})   # "": not recorded by an older version
    atomic_write_text(path, buffer.getvalue())


def write_confusion_csv(path, confusion, classes):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["true \\ predicted", *classes])
    for name, row in zip(classes, confusion):
        writer.writerow([name, *row.tolist()])
    atomic_write_text(path, buffer.getvalue())


# ----------------------------------------------------------------------------- plots

def _pyplot():
    """matplotlib.pyplot on the Agg backend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, plt, path):
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120))
    plt.close(fig)


# The three curves the course plots for every run: (metrics.csv column for train, for test, axis label).
CURVE_PANELS = (("train_loss", "test_loss", "objective (cross-entropy loss)"),
                ("train_top1_err", "test_top1_err", "top-1 error (%)"),
                ("train_top5_err", "test_top5_err", "top-5 error (%)"))


def curve_values(history, column):
    """One metrics column per epoch (errors in %); None where the run did not record it."""
    if column == "train_top1_err":
        return [100 * (1 - float(r["train_acc"])) for r in history]
    values = [r.get(column) for r in history]
    if any(v in (None, "") for v in values):
        return None
    return [(100 if column.endswith("_err") else 1) * float(v) for v in values]


def run_colours(n):
    """``n`` colours, one per run, all distinct: tab10 up to 10 runs, tab20 up to 20 (its dark shades first,
    so neighbours differ in hue), beyond that spread along a continuous colormap."""
    import matplotlib
    if n <= 10:
        return [f"C{i}" for i in range(n)]
    if n <= 20:
        tab20 = matplotlib.colormaps["tab20"]
        return [tab20(i) for i in (list(range(0, 20, 2)) + list(range(1, 20, 2)))[:n]]
    turbo = matplotlib.colormaps["turbo"]
    return [turbo(i / (n - 1)) for i in range(n)]


def draw_panels(axes, runs):
    """Draw ``runs`` ([(label, history)]) on the three CURVE_PANELS axes: one colour per run, train dashed,
    test solid. Returns the runs' colours."""
    colours = run_colours(len(runs))
    for (label, history), colour in zip(runs, colours):
        epochs = [int(r["epoch"]) for r in history]
        for ax, (train, test, ylabel) in zip(axes, CURVE_PANELS):
            for column, style, suffix in ((train, "--", " train"), (test, "-", " test")):
                values = curve_values(history, column)
                if values is not None:
                    ax.plot(epochs, values, style, color=colour, marker="o", markersize=3,
                            label=(label + suffix).strip())
            ax.set(xlabel="epoch", ylabel=ylabel, title=ylabel.split(" (")[0])
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    log_scale_if_spread(axes[0])
    return colours


def log_scale_if_spread(ax):
    """A log y-axis when the plotted values span more than 100x: one diverging run or unstable epoch would
    otherwise flatten every other curve."""
    values = [y for line in ax.get_lines() for y in line.get_ydata()]
    if values and min(values) > 0 and max(values) / min(values) > 100:
        ax.set_yscale("log")


def plot_curves(path, history, title):
    """Objective, top-1 and top-5 error against epochs; train dashed, test solid."""
    if not history:
        return
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    draw_panels(axes, [("", history)])
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, plt, path)


def study_curves_figure(runs, title, columns=4):
    """Several runs' curves overlaid (``runs``: [(label, history)]). The legend, below the panels and clear of
    them, names each run once by its colour, then the two line styles."""
    from matplotlib.lines import Line2D
    plt = _pyplot()
    legend_rows = -(-(len(runs) + 2) // columns)
    legend_inches = 0.3 + 0.22 * legend_rows
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4 + legend_inches))
    colours = draw_panels(axes, runs)
    handles = [Line2D([], [], color=c, marker="o", markersize=4, label=label) for (label, _), c in zip(runs, colours)]
    handles += [Line2D([], [], color="grey", ls="--", label="train"), Line2D([], [], color="grey", label="test")]
    fig.legend(handles=handles, loc="lower center", ncol=columns, fontsize=8, frameon=False)
    fig.suptitle(title + " (train dashed, test solid)")
    fig.tight_layout(rect=(0, legend_inches / fig.get_figheight(), 1, 1))
    return fig, plt


def plot_study_curves(path, runs, title):
    if runs:
        _save(*study_curves_figure(runs, title), path)


def plot_error_vs_time(path, rows, title):
    """Two bar charts side by side, one bar per run: final test top-1 error and training wall time."""
    if not rows:
        return
    plt = _pyplot()
    names = [r["run"] for r in rows]
    fig, (ax_err, ax_time) = plt.subplots(1, 2, figsize=(11, 1.2 + 0.35 * len(rows)), sharey=True)
    colours = run_colours(len(rows))
    ax_err.barh(names, [100 * r["final_top1_err"] for r in rows], color=colours)
    ax_err.set(xlabel="final test top-1 error (%)")
    ax_time.barh(names, [r["train_wall_s"] / 60 for r in rows], color=colours)
    ax_time.set(xlabel="wall time, training + test passes (min)")
    ax_err.invert_yaxis()   # the first run on top, as in the table
    for ax in (ax_err, ax_time):
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, plt, path)


def plot_confusion(path, confusion, classes, title):
    """The confusion matrix as a heat map with counts (rows: true class, columns: predicted)."""
    plt = _pyplot()
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * k, 0.6 + 0.6 * k))
    ax.imshow(confusion, cmap="Blues")
    long_names = max(len(c) for c in classes) > 2
    ax.set_xticks(range(k), classes, rotation=45 if long_names else 0, ha="right" if long_names else "center")
    ax.set_yticks(range(k), classes)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    threshold = confusion.max() / 2 if confusion.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if confusion[i, j] > threshold else "black")
    fig.tight_layout()
    _save(fig, plt, path)


# ----------------------------------------------------------------------------- printed text

def epoch_summary(row, epochs):
    """The one line printed after each epoch."""
    return (f"epoch {row['epoch']}/{epochs}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.2%}  |  "
            f"test loss {row['test_loss']:.4f} top-1 err {row['test_top1_err']:.2%} "
            f"top-5 err {row['test_top5_err']:.2%}  |  lr {row['lr']:.4g}  "
            f"{row['epoch_seconds']:.1f}s ({row['train_images_per_s']:.0f} img/s)")


def per_class_lines(confusion, classes):
    """One line per class: its accuracy and (correct / total)."""
    width = max(len(c) for c in classes)
    lines = []
    for name, row, i in zip(classes, confusion, range(len(classes))):
        total = int(row.sum())
        accuracy = row[i] / total if total else math.nan
        lines.append(f"  {name:<{width}}  {accuracy:7.2%}  ({int(row[i])}/{total})")
    return lines

