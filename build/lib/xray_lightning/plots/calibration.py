"""Reliability diagrams (before/after temperature scaling) and accuracy against coverage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

STYLES = {"val": "tab:blue", "test": "tab:orange"}


def reliability_points(p: torch.Tensor, targets: torch.Tensor, bins: int = 10) -> tuple:
    """(mean predicted, fraction positive, count) per non-empty equal-width bin."""
    p, y = p.double().numpy(), targets.double().numpy()
    index = np.clip((p * bins).astype(int), 0, bins - 1)
    means, fractions, counts = [], [], []
    for b in range(bins):
        inside = index == b
        if inside.any():
            means.append(p[inside].mean())
            fractions.append(y[inside].mean())
            counts.append(int(inside.sum()))
    return np.array(means), np.array(fractions), np.array(counts)


def reliability_figure(
    panels: Mapping[str, Mapping[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]],
    eces: Mapping[str, Mapping[str, tuple[float, float]]],
    title: str = "",
) -> Figure:
    """One panel per stage: fraction positive against mean predicted probability per bin, raw
    (dashed) and calibrated (solid), for each split; ``eces[panel][split]`` = (raw, calibrated)."""
    fig = Figure(figsize=(4.6 * len(panels), 4.4))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, splits) in zip(axes, panels.items(), strict=True):
        ax.plot([0, 1], [0, 1], color="gray", lw=0.8, ls=":")
        for split, (raw, calibrated, targets) in splits.items():
            color = STYLES.get(split, "black")
            before, after = eces[name][split]
            x, y, _ = reliability_points(raw, targets)
            ax.plot(
                x,
                y,
                ls="--",
                marker=".",
                color=color,
                alpha=0.6,
                label=f"{split} raw (ECE {before:.3f})",
            )
            x, y, _ = reliability_points(calibrated, targets)
            ax.plot(
                x, y, ls="-", marker="o", color=color, label=f"{split} calibrated (ECE {after:.3f})"
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("mean predicted probability")
        ax.set_ylabel("fraction positive")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def coverage_figure(
    curves: Mapping[str, Sequence[tuple[float, float, float]]],
    chosen: Mapping[str, float],
    title: str = "",
) -> Figure:
    """3-class accuracy and infected recall of the images not referred, against the share
    referred (the least sure first); the band chosen on val marked per split."""
    fig = Figure(figsize=(9.2, 4.0))
    axes = fig.subplots(1, 2)
    for split, points in curves.items():
        share = [p[0] for p in points]
        color = STYLES.get(split, "black")
        axes[0].plot(share, [p[1] for p in points], color=color, label=split)
        axes[1].plot(share, [p[2] for p in points], color=color, label=split)
        if split in chosen:
            for ax in axes:
                ax.axvline(chosen[split], color=color, ls=":", lw=1)
    for ax, what in zip(
        axes, ("3-class accuracy of the rest", "infected recall of the rest"), strict=True
    ):
        ax.set_xlabel("share of images referred")
        ax.set_ylabel(what)
        ax.set_xlim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
