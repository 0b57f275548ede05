"""Image grids: the showcase grid (official val images) and the failure gallery (test mistakes)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

NORMAL, NON_COVID, COVID = 0, 1, 2
WRONG, RIGHT = "tab:red", "tab:green"


def image_grid_figure(
    images: torch.Tensor | np.ndarray,
    titles: Sequence[str],
    mistakes: Sequence[bool],
    ncols: int = 5,
    title: str = "",
) -> Figure:
    """Grayscale images [N,H,W] in a grid, each with its caption; mistakes framed in red."""
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    fig = Figure(figsize=(2.3 * ncols, 2.9 * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= n:
            ax.axis("off")
            continue
        ax.imshow(np.asarray(images[k]), cmap="gray", vmin=0, vmax=255)
        color = WRONG if mistakes[k] else RIGHT
        ax.set_title(titles[k], fontsize=7, color=color)
        for spine in ax.spines.values():
            spine.set_edgecolor(color)
            spine.set_linewidth(3 if mistakes[k] else 1)
    if title:
        fig.suptitle(title)
    return fig


def caption(
    true: int, predicted: int, p_infected: float, p_covid: float, names: Sequence[str]
) -> str:
    mark = "" if true == predicted else "  WRONG"
    return (
        f"true {names[true]}\npred {names[predicted]}{mark}\n"
        f"p_inf {p_infected:.2f}  p_cov {p_covid:.2f}"
    )


def showcase_figure(
    images: torch.Tensor,
    labels: torch.Tensor,
    predicted: torch.Tensor,
    p_infected: torch.Tensor,
    p_covid: torch.Tensor,
    class_names: Sequence[str],
    title: str = "Showcase (official val images)",
) -> Figure:
    """Every image with its true and predicted label and both probabilities; accuracy on top."""
    wrong = (labels != predicted).tolist()
    accuracy = 1.0 - sum(wrong) / max(len(wrong), 1)
    titles = [
        caption(int(t), int(p), float(a), float(b), class_names)
        for t, p, a, b in zip(labels, predicted, p_infected, p_covid, strict=True)
    ]
    heading = f"{title}: accuracy {accuracy:.1%} ({len(wrong) - sum(wrong)}/{len(wrong)})"
    return image_grid_figure(images, titles, wrong, ncols=5, title=heading)


def decision_confidence(
    predicted: torch.Tensor, p_infected: torch.Tensor, p_covid: torch.Tensor
) -> torch.Tensor:
    """How sure the cascade was of the label it gave: the probability of its decision path."""
    p_inf, p_cov = p_infected.double(), p_covid.double()
    return torch.where(
        predicted == NORMAL,
        1 - p_inf,
        torch.where(predicted == COVID, p_inf * p_cov, p_inf * (1 - p_cov)),
    )


def most_confident_mistakes(
    labels: torch.Tensor,
    predicted: torch.Tensor,
    p_infected: torch.Tensor,
    p_covid: torch.Tensor,
    limit: int | None = None,
) -> torch.Tensor:
    """Indices of the wrong predictions, most confident first."""
    wrong = torch.nonzero(labels != predicted).flatten()
    confidence = decision_confidence(predicted, p_infected, p_covid)[wrong]
    order = wrong[torch.argsort(confidence, descending=True, stable=True)]
    return order if limit is None else order[:limit]


def failure_figure(
    images: torch.Tensor,
    labels: torch.Tensor,
    predicted: torch.Tensor,
    p_infected: torch.Tensor,
    p_covid: torch.Tensor,
    class_names: Sequence[str],
    names: Sequence[str] | None = None,
    limit: int = 30,
    title: str = "Test mistakes, most confident first",
) -> Figure:
    """The cascade's mistakes (up to ``limit``), most confident first, with file names."""
    order = most_confident_mistakes(labels, predicted, p_infected, p_covid, limit)
    total = int((labels != predicted).sum())
    if len(order) == 0:
        fig = Figure(figsize=(5, 2))
        ax = fig.subplots()
        ax.axis("off")
        ax.text(0.5, 0.5, "no mistakes", ha="center", va="center", fontsize=14)
        fig.suptitle(f"{title}: 0 of {len(labels)}")
        return fig
    confidence = decision_confidence(predicted, p_infected, p_covid)
    titles = []
    for i in order.tolist():
        text = caption(
            int(labels[i]), int(predicted[i]), float(p_infected[i]), float(p_covid[i]), class_names
        )
        text = text.replace("  WRONG", f" ({float(confidence[i]):.2f})")
        titles.append(f"{names[i]}\n{text}" if names is not None else text)
    heading = f"{title}: {len(order)} shown of {total} wrong / {len(labels)} images"
    return image_grid_figure(images[order], titles, [True] * len(order), ncols=6, title=heading)
