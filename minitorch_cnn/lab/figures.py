"""The stepper's pictures. matplotlib is imported here only, when a figure is asked for."""
import functools
import io

import numpy as np


def _figure(**kw):
    """A Figure without pyplot (no window, no global state) that a notebook still shows."""
    return _figure_class()(**kw)


@functools.cache
def _figure_class():
    """Jupyter shows an object through its ``_repr_png_``; a Figure that pyplot does not manage has none, and
    printed as ``<Figure size 420x330 with 6 Axes>``. (A class made on first use: matplotlib loads only then.)"""
    from matplotlib.figure import Figure

    class ShownFigure(Figure):
        def _repr_png_(self):
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", dpi=80)
            return buffer.getvalue()

    return ShownFigure


def _grid(n):
    cols = int(np.ceil(np.sqrt(n)))
    return int(np.ceil(n / cols)), cols


def feature_maps(y, title, max_maps=32):
    """y: (C, H, W) -> one grey map per channel (first ``max_maps``); y: (F,) -> bars."""
    if y.ndim == 1:
        fig = _figure(figsize=(6, 3))
        ax = fig.add_subplot()
        ax.bar(np.arange(len(y)), y)
        ax.set_title(title)
        ax.set_xlabel("unit")
        return fig
    y = y.reshape(-1, *y.shape[-2:])
    n = min(len(y), max_maps)
    rows, cols = _grid(n)
    fig = _figure(figsize=(1.4 * cols, 1.4 * rows + 0.5))
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(y[i], cmap="viridis")
        ax.set_title(str(i), fontsize=7)
        ax.axis("off")
    fig.suptitle(f"{title}: {n} of {len(y)} maps")
    return fig


def filter_grid(w, title, max_filters=64):
    """w: (F, C, kh, kw) -> one small image per filter (RGB when C == 3, else channel 0); w: (F, K) -> heat map."""
    if w.ndim == 2:
        fig = _figure(figsize=(6, 3))
        ax = fig.add_subplot()
        ax.imshow(w, aspect="auto", cmap="coolwarm")
        ax.set_title(title)
        return fig
    n = min(len(w), max_filters)
    rows, cols = _grid(n)
    fig = _figure(figsize=(1.0 * cols, 1.0 * rows + 0.5))
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        f = w[i]
        if f.shape[0] == 3:      # scale each filter to [0, 1] and show it as the colour it responds to
            f = (f - f.min()) / (np.ptp(f) + 1e-12)
            ax.imshow(f.transpose(1, 2, 0))
        else:
            ax.imshow(f[0], cmap="gray")
        ax.axis("off")
    fig.suptitle(f"{title}: {n} of {len(w)}" + ("" if w.shape[1] == 3 else " (input channel 0)"))
    return fig


def grad_norm_plot(steps, title):
    """Gradient L2 norm at each step's output, log scale; functional ops (add, cat) as red dots."""
    fig = _figure(figsize=(10, 4))
    ax = fig.add_subplot()
    xs = [s.index for s in steps if s.grad_output is not None]
    norms = [float(np.linalg.norm(s.grad_output)) for s in steps if s.grad_output is not None]
    ax.semilogy(xs, np.maximum(norms, 1e-30), ".-", lw=1)
    ops = [(s.index, float(np.linalg.norm(s.grad_output))) for s in steps
           if s.grad_output is not None and not s.kind[0].isupper()]
    if ops:
        ax.semilogy(*zip(*ops), "o", color="tab:red", label="functional op (add, cat, ...)")
        ax.legend()
    ax.set_xlabel("step (input side left)")
    ax.set_ylabel("||dL/d output||")
    ax.set_title(title)
    return fig
