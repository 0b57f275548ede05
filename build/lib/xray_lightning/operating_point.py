"""The cascade's operating point: which thresholds t1/t2 turn probabilities into decisions.

Two operating points are compared:

- **accuracy-first**: the configured ``task.cascade.t1``/``t2`` (0.5 by default). Each stage's
  checkpoint is already selected by val accuracy at that threshold, so this is the point the
  training optimised; keeping it as the baseline also keeps a run's numbers unchanged when no
  recall target is set.
- **recall-first** (``task.cascade.target_recall``, e.g. 0.98): missing an infection or a covid
  case costs more than a false alarm, so t1 is the largest threshold whose val recall of
  "infected" (all val images) reaches the target, and t2 the largest whose val recall of "covid"
  (on the truly infected val images, stage 2's own job) reaches it. Chosen on val, reported on
  test, so the test numbers stay honest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from xray_lightning.decision import COVID, Probabilities, decide
from xray_lightning.errors import XrayLightningError

# Thresholds must stay inside (0, 1) (CascadeModule checks it); a saturated float32 sigmoid
# gives exactly 1.0, which the upper clamp still counts as positive.
LOWEST, HIGHEST = 1e-6, 1.0 - 1e-6


class OperatingPointError(XrayLightningError):
    """A recall target is malformed, or the val split cannot support it."""


def parse_target_recall(value: Any) -> dict[str, float] | None:
    """``cascade.target_recall`` as ``{"t1": r1, "t2": r2}``, or None when unset.

    A number applies to both stages; a mapping with keys ``t1``/``t2`` sets them apart (a missing
    key keeps that stage's configured threshold).
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        unknown = sorted(set(map(str, value)) - {"t1", "t2"})
        if unknown:
            raise OperatingPointError(
                f"task.cascade.target_recall: unknown key(s) {unknown}; expected t1 and/or t2"
            )
        targets = {str(k): v for k, v in value.items() if v is not None}
    else:
        targets = {"t1": value, "t2": value}
    for key, target in targets.items():
        if isinstance(target, bool) or not isinstance(target, int | float) or not 0 < target <= 1:
            raise OperatingPointError(
                f"task.cascade.target_recall ({key}) must be a number in (0, 1], got {target!r}"
            )
    return {k: float(v) for k, v in targets.items()}


def threshold_for_recall(
    scores: torch.Tensor, targets: torch.Tensor, target_recall: float
) -> float:
    """A threshold reaching ``target_recall`` (recall of scores >= t) on these labels: halfway
    between the lowest positive score it must keep and the next lower score, so as high as the
    target allows."""
    positives = scores[targets.bool()].double().sort(descending=True).values
    if positives.numel() == 0:
        raise OperatingPointError(
            "cannot choose a threshold for a recall target: the val split has no positive images"
        )
    needed = max(1, math.ceil(target_recall * positives.numel() - 1e-9))
    kth = positives[needed - 1].item()
    # Halfway to the next lower score, so ">= t" (the cascade) and "> t" (torchmetrics) agree.
    below = scores.double()[scores.double() < kth]
    threshold = (kth + below.max().item()) / 2 if below.numel() else kth * (1 - 1e-6)
    return float(min(max(threshold, LOWEST), HIGHEST))


def recall_first_thresholds(
    val: Probabilities, targets: Mapping[str, float], defaults: tuple[float, float]
) -> tuple[float, float]:
    """(t1, t2) reaching the recall targets on val: infected for t1, covid among infected for t2."""
    t1, t2 = defaults
    if "t1" in targets:
        t1 = threshold_for_recall(val.p_infected, val.infected, targets["t1"])
    if "t2" in targets:
        infected = val.infected
        t2 = threshold_for_recall(
            val.p_covid[infected], val.labels[infected] == COVID, targets["t2"]
        )
    return t1, t2


def cascade_metrics(
    splits: Mapping[str, Probabilities], t1: float, t2: float
) -> tuple[dict[str, float], dict[str, list[list[int]]]]:
    """The metrics ``CascadeModule.test`` logs (the same ``CascadeMetrics``, the same keys) and
    the 3x3 confusions, at (t1, t2), from probabilities already computed."""
    from xray_lightning.modules.cascade import CascadeMetrics  # torchmetrics: only when measuring

    metrics: dict[str, float] = {}
    confusion: dict[str, list[list[int]]] = {}
    for split, p in splits.items():
        split_metrics = CascadeMetrics(t1, t2)
        split_metrics.update(
            decide(p.p_infected, p.p_covid, t1, t2), p.labels, p.p_infected, p.p_covid
        )
        values, confusion[split] = split_metrics.compute()
        metrics.update({f"{split}/{k}": float(v) for k, v in values.items()})
    return metrics, confusion


def operating_points(
    probs: Mapping[str, Probabilities],
    configured: tuple[float, float],
    target_recall: Any = None,
    computed_by: str | None = None,
) -> dict[str, dict[str, Any]]:
    """accuracy-first at the configured (t1, t2) and, when ``target_recall`` is set and there is a
    val split, recall-first with thresholds chosen on val: thresholds, metrics and confusions.
    ``computed_by`` marks a recall-first point computed after the run (by ``report``)."""
    thresholds = {"accuracy_first": configured}
    targets = parse_target_recall(target_recall)
    if targets and "val" in probs:
        thresholds["recall_first"] = recall_first_thresholds(probs["val"], targets, configured)
    points: dict[str, dict[str, Any]] = {}
    for name, (t1, t2) in thresholds.items():
        metrics, confusion = cascade_metrics(probs, t1, t2)
        points[name] = {
            "t1": t1,
            "t2": t2,
            "target_recall": targets if name == "recall_first" else None,
            "metrics": metrics,
            "confusion": confusion,
        }
        if name == "recall_first" and computed_by:
            points[name]["computed_by"] = computed_by
    return points


HEADLINE = (
    "acc",
    "f1_macro",
    "recall_normal",
    "recall_non_covid",
    "recall_covid",
    "precision_normal",
    "precision_non_covid",
    "precision_covid",
    "stage1/recall",
    "stage1/specificity",
    "stage2/recall",
    "stage2/specificity",
)


def comparison_table(points: Mapping[str, Mapping[str, Any]], split: str = "test") -> str:
    """A Markdown table: one column per operating point, thresholds then headline metrics."""
    names = list(points)
    lines = [
        f"| {split} | " + " | ".join(names) + " |",
        "| --- |" + " --- |" * len(names),
    ]
    for key in ("target_recall", "t1", "t2"):
        cells = [_cell(points[n].get(key)) for n in names]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    for key in HEADLINE:
        cells = [_cell((points[n].get("metrics") or {}).get(f"{split}/{key}")) for n in names]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {v:g}" for k, v in value.items())
    return f"{value:.4f}" if isinstance(value, float) else str(value)
