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
                  "test_top5_err", "epoch_seconds", "train_images_per_s")
CURVES_PNG, CONFUSION_PNG, CONFUSION_CSV = "curves.png", "confusion_matrix.png", "confusion_matrix.csv"


def write_json(path, document):
    atomic_write_text(path, json.dumps(document, indent=2) + "\n")


def write_metrics_csv(path, history):
    """One row per completed epoch, rewritten whole each time (it always matches the checkpoint)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRICS_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: row[k] for k in METRICS_FIELDS})
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


def plot_curves(path, history, title):
    """Loss (left) and top-1 error (right) against epochs, for training and test."""
    if not history:
        return
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    ax_loss.plot(epochs, [r["test_loss"] for r in history], "s-", label="test")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_err.plot(epochs, [100 * (1 - r["train_acc"]) for r in history], "o-", label="train")
    ax_err.plot(epochs, [100 * r["test_top1_err"] for r in history], "s-", label="test")
    ax_err.set(xlabel="epoch", ylabel="top-1 error (%)", title="top-1 error")
    for ax in (ax_loss, ax_err):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
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

