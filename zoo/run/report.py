"""What a run leaves for a student to open besides its figures (zoo/run/plots.py): config.json,
metrics.csv, confusion_matrix.csv, and the lines printed after each epoch and by ``zoo.evaluate``."""
import csv
import io
import json
import math

import numpy as np

from minitorch_cnn.files import atomic_write_text

METRICS_FIELDS = ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "test_top1_err",
                  "test_top5_err", "epoch_seconds", "train_images_per_s", "train_top5_err", "steps", "images_seen")
CONFUSION_CSV = "confusion_matrix.csv"


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


def read_confusion_csv(path, num_classes):
    """The matrix ``write_confusion_csv`` wrote (int64, num_classes x num_classes), or None if it is absent
    or not such a file (then there is nothing to redraw from)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))[1:]
        matrix = np.array([[int(v) for v in row[1:]] for row in rows], dtype=np.int64)
    except (OSError, ValueError, csv.Error):
        return None
    return matrix if matrix.shape == (num_classes, num_classes) else None


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

