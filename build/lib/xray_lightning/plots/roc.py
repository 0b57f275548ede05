"""ROC curves of the binary stages, with the cascade's operating points marked."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from matplotlib.figure import Figure
from torchmetrics.functional.classification import binary_auroc, binary_roc

Scores = tuple[torch.Tensor, torch.Tensor]  # (probabilities [N], 0/1 targets [N])


def rates_at(scores: torch.Tensor, targets: torch.Tensor, threshold: float) -> tuple[float, float]:
    """(false positive rate, true positive rate) when predicting positive for scores >= t."""
    predicted = scores >= threshold
    positives, negatives = targets.bool(), ~targets.bool()
    tpr = (predicted & positives).sum() / positives.sum().clamp(min=1)
    fpr = (predicted & negatives).sum() / negatives.sum().clamp(min=1)
    return float(fpr), float(tpr)


def roc_figure(
    panels: Mapping[str, Mapping[str, Scores]],
    points: Mapping[str, Mapping[str, float]] | None = None,
    marked_split: str = "test",
    title: str = "",
) -> Figure:
    """One panel per stage, one ROC curve per split; ``points[panel][name]`` is a threshold
    marked on the ``marked_split`` curve (e.g. accuracy-first and recall-first)."""
    points = points or {}
    markers = ("o", "s", "^", "D")
    fig = Figure(figsize=(4.4 * len(panels), 4.3))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (panel, splits) in zip(axes[0], panels.items(), strict=True):
        for split, (scores, targets) in splits.items():
            targets = targets.long()
            if targets.min() == targets.max():  # one class only: no curve
                continue
            fpr, tpr, _ = binary_roc(scores.float(), targets)
            auc = float(binary_auroc(scores.float(), targets))
            line = "-" if split == marked_split else ":"
            ax.plot(fpr, tpr, line, label=f"{split} (AUC {auc:.3f}, n={len(targets)})")
        marked = splits.get(marked_split)
        for k, (name, threshold) in enumerate((points.get(panel) or {}).items()):
            if marked is None:
                break
            x, y = rates_at(marked[0], marked[1], threshold)
            ax.plot(
                x,
                y,
                markers[k % len(markers)],
                markersize=9,
                markerfacecolor="none",
                markeredgewidth=2,
                label=f"{name}: t={threshold:.3g} (TPR {y:.2f}, FPR {x:.2f})",
            )
        ax.plot([0, 1], [0, 1], color="gray", lw=0.8, ls="--")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate (recall)")
        ax.set_title(panel)
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
