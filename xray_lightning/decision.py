"""The cascade's decision rule, without Lightning: class names, labels, probabilities -> labels.

normal if p_infected < t1, else covid if p_covid >= t2, else non-covid. Shared by the
LightningModule (``modules.cascade``), the plain labeller ``predict`` uses (``labeller``) and the
readers of finished runs (``runs``, ``operating_point``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from xray_lightning.errors import CheckpointError

CLASS_NAMES = ("normal", "non-covid", "covid")
NORMAL, NON_COVID, COVID = 0, 1, 2


def decide(p_infected: torch.Tensor, p_covid: torch.Tensor, t1: float, t2: float) -> torch.Tensor:
    """3-class labels: normal if p_infected < t1, else covid if p_covid >= t2, else non-covid."""
    infected_label = torch.where(p_covid >= t2, COVID, NON_COVID)
    return torch.where(p_infected >= t1, infected_label, NORMAL)


def member_probabilities(stage: Any, images: torch.Tensor) -> torch.Tensor:
    """[K, B]: each member's probabilities of an ensemble stage (``member_proba``), or [1, B]
    for a single classifier."""
    member_proba = getattr(stage, "member_proba", None)
    return member_proba(images) if member_proba is not None else stage.predict_proba(images)[None]


def staged_proba(
    stage1: Any,
    stage2: Any,
    images: torch.Tensor,
    t1: float,
    also: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(p_infected, p_covid, spread) where stage 2 runs only on the images stage 1 calls
    infected (and those ``also`` marks); p_covid is NaN for the others: what labelling new
    images needs, at less cost.

    Each stage's probability is the mean of its members' (one member: its own). ``spread`` is
    how much the members disagree on the image, the largest std of their probabilities over the
    stages that decided it (stage 1, and stage 2 for an image called infected); 0 for a single
    model. An image the members disagree on is one to refer (``calibration.Calibration``).
    """
    members1 = member_probabilities(stage1, images)
    p_infected = members1.mean(0)
    spread = members1.std(0, correction=0)
    p_covid = torch.full_like(p_infected, float("nan"))
    called = p_infected >= t1
    needed = called if also is None else called | also
    if bool(needed.any()):
        part = images if bool(needed.all()) else images[needed]  # all: no copy
        members2 = member_probabilities(stage2, part)
        p_covid[needed] = members2.mean(0)
        spread2 = torch.zeros_like(spread)
        spread2[needed] = members2.std(0, correction=0)
        spread = torch.where(called, torch.maximum(spread, spread2), spread)
    return p_infected, p_covid, spread


def check_thresholds(t1: float, t2: float) -> tuple[float, float]:
    for name, value in (("t1", t1), ("t2", t2)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"cascade.{name} must be in (0, 1), got {value}")
    return float(t1), float(t2)


def check_same_input(spec1: Mapping[str, Any] | None, spec2: Mapping[str, Any] | None) -> None:
    """Both stages of a cascade must have been trained on the same input preprocessing (what
    only names their labels aside)."""
    input1, input2 = input_spec(spec1), input_spec(spec2)
    if input1 != input2:
        raise CheckpointError(
            f"the two stages were trained with different input preprocessing ({input1} vs "
            f"{input2}); a cascade needs both to see the same input"
        )


def input_spec(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (spec or {}).items() if k not in ("stage", "class_names")}


@dataclass(frozen=True)
class Probabilities:
    """Both stages' outputs on one split and its 3-class labels (0 normal, 1 non-covid, 2 covid)."""

    p_infected: torch.Tensor
    p_covid: torch.Tensor
    labels: torch.Tensor
    spread: torch.Tensor | None = None  # ensembles: the members' disagreement (staged_proba)

    @property
    def infected(self) -> torch.Tensor:
        return self.labels > NORMAL


def stage_scores(p: Probabilities) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each stage's (probabilities, 0/1 targets) on one split: stage 1 on every image, stage 2 on
    the truly infected ones only (its own job)."""
    infected = p.infected
    return {
        "stage1": (p.p_infected, infected.long()),
        "stage2": (p.p_covid[infected], (p.labels[infected] == COVID).long()),
    }
