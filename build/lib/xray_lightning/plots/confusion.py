"""Confusion-matrix figures: counts, or rows normalised to the share of each true class."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def draw_confusion(
    ax: Axes,
    matrix: Sequence[Sequence[float]] | np.ndarray,
    class_names: Sequence[str],
    normalize: bool = False,
) -> None:
    """Draw a confusion matrix on ``ax`` (rows: true class, columns: predicted class)."""
    counts = np.asarray(matrix, dtype=float)
    values = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None) if normalize else counts
    ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else max(values.max(), 1))
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=30, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = (1 if normalize else values.max()) / 2
    for row in ticks:
        for col in ticks:
            text = f"{values[row, col]:.2f}" if normalize else f"{int(counts[row, col])}"
            color = "white" if values[row, col] > threshold else "black"
            ax.text(col, row, text, ha="center", va="center", color=color)


def confusion_figure(
    matrix: Sequence[Sequence[float]] | np.ndarray,
    class_names: Sequence[str],
    title: str = "",
    normalize: bool = False,
) -> Figure:
    """A heat map of a confusion matrix (rows: true class, columns: predicted class)."""
    size = 1.2 + 1.1 * len(class_names)
    fig = Figure(figsize=(size, size))
    ax = fig.subplots()
    draw_confusion(ax, matrix, class_names, normalize)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def confusion_pair_figure(
    matrix: Sequence[Sequence[float]] | np.ndarray,
    class_names: Sequence[str],
    title: str = "",
) -> Figure:
    """Counts (left) and row-normalised shares (right) of one confusion matrix."""
    size = 1.4 + 1.1 * len(class_names)
    fig = Figure(figsize=(2 * size, size + 0.4))
    axes = fig.subplots(1, 2)
    draw_confusion(axes[0], matrix, class_names, normalize=False)
    axes[0].set_title("counts")
    draw_confusion(axes[1], matrix, class_names, normalize=True)
    axes[1].set_title("share of each true class")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
