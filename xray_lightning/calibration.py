"""Calibrated probabilities and the "refer" band, both fitted on val (never on test).

Temperature scaling (Guo et al. 2017) per stage: ``p' = sigmoid(logit(p) / T)``, with T fitted by
maximum likelihood on the val split. It is monotonic, so each threshold moves with it
(``t' = sigmoid(logit(t) / T)``) and every decision, and so every accuracy, stays as it was; only
the probabilities shown change. The refer band: an image is referred (to a person) when its
calibrated probability sits within ``margin`` of the threshold of a stage that decided it (stage 1
always, stage 2 when it was called infected), or, for an ensemble, when its members disagree on it
(the std of their probabilities at a deciding stage above ``spread``: ``decision.staged_proba``).
The band is the one referring the fewest val images whose val images not referred reach
``target_accuracy`` (3-class), fixed in advance at 0.90; the spread rule is kept only where it
refers fewer val images than the margin alone (experiments/refer).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

from xray_lightning.decision import COVID, NORMAL, decide, stage_scores

EPS = 1e-6
TARGET_ACCURACY = 0.90
MAX_REFERRED = 0.5  # never refer more than half of val: past that the band is useless


def logit(p: torch.Tensor) -> torch.Tensor:
    p = p.double().clamp(EPS, 1 - EPS)
    return torch.log(p) - torch.log1p(-p)


def scale(p: torch.Tensor, temperature: float) -> torch.Tensor:
    """``sigmoid(logit(p) / T)`` in float32 (NaN stays NaN)."""
    return torch.sigmoid(logit(p) / temperature).float()


def fit_temperature(p: torch.Tensor, targets: torch.Tensor) -> float:
    """The T minimising the binary NLL of ``scale(p, T)`` on these labels (LBFGS on log T)."""
    z, y = logit(p), targets.double()
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        value = torch.nn.functional.binary_cross_entropy_with_logits(z / log_t.exp(), y)
        value.backward()
        return value

    optimiser.step(loss)
    return float(log_t.detach().exp().clamp(0.05, 20.0))


def ece(p: torch.Tensor, targets: torch.Tensor, bins: int = 15) -> float:
    """Expected calibration error (torchmetrics' binary one, ``n_bins`` equal-width bins)."""
    from torchmetrics.functional.classification import binary_calibration_error

    return float(binary_calibration_error(p.float(), targets.long(), n_bins=bins))


@dataclass(frozen=True)
class Calibration:
    """Per-stage temperatures and the refer margin (probability distance from a threshold)."""

    t_stage1: float = 1.0
    t_stage2: float = 1.0
    refer_margin: float = 0.0
    fitted_on: str = "none"
    refer_spread: float | None = None  # ensembles: refer when the members' std exceeds this

    @classmethod
    def from_saved(cls, saved: Mapping[str, Any] | None) -> Calibration:
        if not saved:
            return cls()
        keys = {"t_stage1", "t_stage2", "refer_margin", "fitted_on", "refer_spread"}
        return cls(**{k: v for k, v in saved.items() if k in keys})

    def to_saved(self) -> dict[str, Any]:
        return asdict(self)

    def probabilities(
        self, p_infected: torch.Tensor, p_covid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return scale(p_infected, self.t_stage1), scale(p_covid, self.t_stage2)

    def thresholds(self, t1: float, t2: float) -> tuple[float, float]:
        one, two = self.probabilities(torch.tensor([t1]), torch.tensor([t2]))
        return float(one), float(two)

    def margin_of(
        self, p_infected: torch.Tensor, p_covid: torch.Tensor, t1: float, t2: float
    ) -> torch.Tensor:
        """Per image: how far its calibrated probabilities sit from the thresholds of the
        stages that decided it (the smaller, the less sure)."""
        c1, c2 = self.probabilities(p_infected, p_covid)
        s1, s2 = self.thresholds(t1, t2)
        margin = (c1 - s1).abs()
        infected = p_infected >= t1
        stage2 = torch.where(infected, (c2 - s2).abs(), torch.full_like(margin, math.inf))
        return torch.minimum(margin, torch.nan_to_num(stage2, nan=math.inf))

    def refer(
        self,
        p_infected: torch.Tensor,
        p_covid: torch.Tensor,
        t1: float,
        t2: float,
        spread: torch.Tensor | None = None,
    ) -> torch.Tensor:
        referred = self.margin_of(p_infected, p_covid, t1, t2) < self.refer_margin
        if spread is not None and self.refer_spread is not None:
            referred |= spread > self.refer_spread
        return referred

    def shown(
        self,
        p_infected: torch.Tensor,
        p_covid: torch.Tensor,
        t1: float,
        t2: float,
        spread: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What a user is shown: (calibrated p_infected, calibrated p_covid, refer flags)."""
        referred = self.refer(p_infected, p_covid, t1, t2, spread)
        return (*self.probabilities(p_infected, p_covid), referred)


def calibrated_stage_scores(
    p: Any, calibration: Calibration
) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``decision.stage_scores`` with each stage's calibrated probabilities beside the raw ones:
    (raw, calibrated, 0/1 targets), as ECE and the reliability diagrams read them."""
    c1, c2 = calibration.probabilities(p.p_infected, p.p_covid)
    calibrated = {"stage1": c1, "stage2": c2[p.infected]}
    return {
        stage: (raw, calibrated[stage], targets)
        for stage, (raw, targets) in stage_scores(p).items()
    }


def fit(val: Any, t1: float, t2: float, target_accuracy: float = TARGET_ACCURACY) -> Calibration:
    """Temperatures and the refer band from a val split's probabilities (``Probabilities``);
    for an ensemble (``val.spread`` set and not all 0) also the members' spread above which to
    refer, where it lets fewer val images be referred at the target."""
    infected = val.labels > NORMAL
    t_stage1 = fit_temperature(val.p_infected, infected)
    t_stage2 = fit_temperature(val.p_covid[infected], val.labels[infected] == COVID)
    calibration = Calibration(t_stage1, t_stage2, 0.0, "val")
    margins = calibration.margin_of(val.p_infected, val.p_covid, t1, t2)
    right = decide(val.p_infected, val.p_covid, t1, t2) == val.labels
    margin_only = _smallest_band(margins, right, torch.zeros_like(right), target_accuracy)
    chosen = (margin_only, None) if margin_only is not None else (_fallback(margins), None)
    spread = val.spread
    if margin_only is not None and spread is not None and bool((spread > 0).any()):
        fewest = int((margins < margin_only).sum())
        cuts = torch.quantile(spread.double(), torch.linspace(0.5, 1.0, 51, dtype=torch.float64))
        for cut in sorted(set(cuts.tolist()), reverse=True):  # ties: the fewer spread referrals
            by_spread = spread > cut
            margin = _smallest_band(margins, right, by_spread, target_accuracy)
            if margin is None:
                continue
            count = int(((margins < margin) | by_spread).sum())
            if count < fewest:
                fewest, chosen = count, (margin, cut)
    return Calibration(t_stage1, t_stage2, chosen[0], "val", chosen[1])


def _smallest_band(
    margins: torch.Tensor, right: torch.Tensor, referred: torch.Tensor, target_accuracy: float
) -> float | None:
    """The smallest margin whose images kept (margin at least it, and not already ``referred``)
    reach ``target_accuracy``, referring at most ``MAX_REFERRED`` of all; None if none does."""
    n = len(margins)
    candidates = (~referred).nonzero().flatten()
    if len(candidates) == 0:
        return None
    order = candidates[torch.argsort(margins[candidates], descending=True)]  # the surest first
    kept_right = right[order].double().cumsum(0) / torch.arange(1, len(order) + 1)
    fewest_kept = math.ceil(n * (1 - MAX_REFERRED))
    for kept in range(len(order), fewest_kept - 1, -1):
        if kept_right[kept - 1] >= target_accuracy:
            # refer everything less sure than the last image kept
            return float(margins[order[kept - 1]]) if kept < len(order) else 0.0
    return None


def _fallback(margins: torch.Tensor) -> float:
    """No band reaches the target: the one referring ``MAX_REFERRED`` of the images."""
    order = torch.argsort(margins, descending=True)
    return float(margins[order[math.ceil(len(margins) * (1 - MAX_REFERRED)) - 1]])


def referral_outcome(
    predicted: torch.Tensor, labels: torch.Tensor, referred: torch.Tensor
) -> dict[str, float | None]:
    """Share referred, and the 3-class accuracy and infected recall of the images kept."""
    kept, infected = ~referred, labels > NORMAL
    caught = (predicted > NORMAL) & infected
    return {
        "referred": float(referred.double().mean()),
        "acc_not_referred": (
            float((predicted == labels)[kept].double().mean()) if kept.any() else None
        ),
        "infected_recall_not_referred": (
            float(caught[kept & infected].sum() / (kept & infected).sum())
            if (kept & infected).any()
            else None
        ),
    }


def coverage_curve(
    p: Any, calibration: Calibration, t1: float, t2: float
) -> list[tuple[float, float, float]]:
    """(share referred, 3-class accuracy of the rest, infected recall of the rest) for each
    number of images referred, the least sure first."""
    margins = calibration.margin_of(p.p_infected, p.p_covid, t1, t2)
    predicted = decide(p.p_infected, p.p_covid, t1, t2)
    order = torch.argsort(margins, descending=True)
    right = (predicted == p.labels)[order].double()
    infected = (p.labels > NORMAL)[order].double()
    caught = infected * (predicted > NORMAL)[order].double()
    points = []
    n = len(order)
    for kept in range(n, 0, -1):
        positives = float(infected[:kept].sum())
        recall = float(caught[:kept].sum()) / positives if positives else math.nan
        points.append((1 - kept / n, float(right[:kept].mean()), recall))
    return points
