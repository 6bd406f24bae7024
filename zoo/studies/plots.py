"""A study's two figures: every run's curves overlaid, and each run's final error beside its wall time.

    curves.png         objective, top-1 and top-5 error per epoch: one colour per run, train dashed, test solid
    error_vs_time.png  final test top-1 error and training wall time per run, as bars

The panels are those of a single run's curves.png (zoo/run/plots.py), drawn for several runs at once.
"""
from zoo.run.plots import draw_panels, pyplot, run_colours, save_png


def study_curves_figure(runs, title, columns=4):
    """Several runs' curves overlaid (``runs``: [(label, history)]). The legend, below the panels and clear of
    them, names each run once by its colour, then the two line styles."""
    from matplotlib.lines import Line2D
    plt = pyplot()
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
        save_png(*study_curves_figure(runs, title), path)


def plot_error_vs_time(path, rows, title):
    """Two bar charts side by side, one bar per run: final test top-1 error and training wall time."""
    if not rows:
        return
    plt = pyplot()
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
    save_png(fig, plt, path)
