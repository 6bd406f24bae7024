"""The figures of a training run, and the curve panels the study figures share with it.

    curves.png             objective, top-1 and top-5 error against epochs; train dashed, test solid
    confusion_matrix.png   the final test pass's confusion matrix with counts

Plots use matplotlib's non-interactive Agg backend (no window, works over ssh and in CI). matplotlib
(a dependency) is imported only when a plot is drawn, so the command lines start quickly.
"""
from minitorch_cnn.files import atomic_write

CURVES_PNG, CONFUSION_PNG = "curves.png", "confusion_matrix.png"


def pyplot():
    """matplotlib.pyplot on the Agg backend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_png(fig, plt, path):
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
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    draw_panels(axes, [("", history)])
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, plt, path)


def plot_confusion(path, confusion, classes, title):
    """The confusion matrix as a heat map with counts (rows: true class, columns: predicted)."""
    plt = pyplot()
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
    save_png(fig, plt, path)
