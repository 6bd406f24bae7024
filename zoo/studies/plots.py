"""A study's figures: every run's curves overlaid, each run's final error beside its wall time, and (when
configurations have several seeds) each configuration's mean curve with the spread of its seeds.

    curves.png         objective, top-1 and top-5 error per epoch: one colour per run, train dashed, test solid
    error_vs_time.png  final test top-1 error and training wall time per run, as bars
    seeds.png          per configuration: the mean over its seeds, per epoch, with a band from the lowest to
                       the highest seed (plot_seed_curves also draws any subset: one figure per ablation group)

The panels are those of a single run's curves.png (zoo/run/plots.py), drawn for several runs at once.
"""
from zoo.run.plots import CURVE_PANELS, curve_values, draw_panels, log_scale_if_spread, pyplot, run_colours, save_png


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


def seed_bands(histories, column):
    """(epochs, mean, lowest, highest) of ``column`` over several seeds' histories, over the epochs all of
    them reached; None if a history lacks the column."""
    series = [curve_values(h, column) for h in histories]
    if any(v is None for v in series):
        return None
    n = min(len(v) for v in series)
    columns = [[v[i] for v in series] for i in range(n)]
    return (list(range(1, n + 1)), [sum(c) / len(c) for c in columns], [min(c) for c in columns],
            [max(c) for c in columns])


def plot_seed_curves(path, groups, title):
    """``groups``: [(configuration, [history of each seed])]. Three panels as curves.png; per configuration
    the mean over its seeds (test solid, train dashed) with bars and a band from the lowest to the highest
    seed."""
    if not groups:
        return
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    for (name, histories), colour in zip(groups, run_colours(len(groups))):
        for ax, (train, test, ylabel) in zip(axes, CURVE_PANELS):
            for column, style in ((train, "--"), (test, "-")):
                bands = seed_bands(histories, column)
                if bands is None:
                    continue
                epochs, mean, low, high = bands
                label = f"{name} ({len(histories)} seeds)" if column == test else None
                spread = [[m - lo for m, lo in zip(mean, low)], [hi - m for m, hi in zip(mean, high)]]
                ax.errorbar(epochs, mean, yerr=spread, fmt="o" + style, color=colour, markersize=3, capsize=3,
                            elinewidth=0.8, label=label)
                if len(histories) > 1 and len(epochs) > 1:
                    ax.fill_between(epochs, low, high, color=colour, alpha=0.12, linewidth=0)
            ax.set(xlabel="epoch", ylabel=ylabel, title=ylabel.split(" (")[0])
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    log_scale_if_spread(axes[0])
    axes[1].legend(fontsize=7)
    fig.suptitle(f"{title}: mean over seeds, band = lowest to highest seed (train dashed, test solid)")
    fig.tight_layout()
    save_png(fig, plt, path)
