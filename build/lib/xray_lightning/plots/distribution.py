"""How many images of each class each split holds."""

from __future__ import annotations

from collections.abc import Mapping

from matplotlib.figure import Figure


def class_distribution_figure(
    counts: Mapping[str, Mapping[str, int]], title: str | None = None
) -> Figure:
    """Grouped bars: one group per split, one bar per class, each bar labelled with its count."""
    splits = list(counts)
    classes = list(dict.fromkeys(c for per in counts.values() for c in per))
    width = 0.8 / max(len(classes), 1)
    fig = Figure(figsize=(1.6 + 1.9 * len(splits), 4.0))
    ax = fig.subplots()
    for k, cls in enumerate(classes):
        xs = [i + (k - (len(classes) - 1) / 2) * width for i in range(len(splits))]
        ys = [counts[s].get(cls, 0) for s in splits]
        bars = ax.bar(xs, ys, width, label=cls)
        ax.bar_label(bars, fontsize=8)
    ax.set_xticks(range(len(splits)), splits)
    ax.set_ylabel("images")
    ax.set_title(title or "Class distribution per split")
    ax.legend()
    ax.margins(y=0.12)
    fig.tight_layout()
    return fig
