"""The report's architecture: stage 1 (normal vs infected), then stage 2 (covid vs non-covid)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from xray_lightning.decision import (
    CLASS_NAMES,
    COVID,
    NON_COVID,
    NORMAL,
    check_same_input,
    check_thresholds,
    decide,
    staged_proba,
)
from xray_lightning.ensemble import StageEnsemble, member_stage, stage_of
from xray_lightning.errors import CheckpointError
from xray_lightning.models.fusion import fold_batchnorm
from xray_lightning.modules.binary import BinaryClassifier
from xray_lightning.modules.checkpoints import load_classifier
from xray_lightning.modules.metrics import binary_metrics, confusion_matrix, multiclass_metrics

__all__ = [
    "CLASS_NAMES",
    "COVID",
    "NON_COVID",
    "NORMAL",
    "CascadeMetrics",
    "CascadeModule",
    "decide",
]


class CascadeModule(pl.LightningModule):
    """Composes two trained binary classifiers into a 3-class decision.

    normal if p_infected < t1, else covid if p_covid >= t2, else non-covid. ``trainer.test`` on
    3-class batches logs, for each of ``eval_splits`` (one test dataloader each): 3-class accuracy,
    macro F1, per-class precision/recall, and each stage's own metrics (stage 2 on the truly
    infected images only); confusion matrices are kept in ``self.confusion``.
    """

    def __init__(
        self,
        stage1: BinaryClassifier | StageEnsemble,
        stage2: BinaryClassifier | StageEnsemble,
        t1: float = 0.5,
        t2: float = 0.5,
        eval_splits: Sequence[str] = ("test",),
    ) -> None:
        super().__init__()
        _check_stage(stage1, "normal_vs_infected", "stage1")
        _check_stage(stage2, "covid_vs_noncovid", "stage2")
        check_same_input(stage1.preprocess, stage2.preprocess)
        self.stage1 = stage1
        self.stage2 = stage2
        self.t1, self.t2 = check_thresholds(t1, t2)
        self.eval_splits = tuple(eval_splits)
        self.class_names = CLASS_NAMES
        self.split_metrics = nn.ModuleDict(
            {split: CascadeMetrics(self.t1, self.t2) for split in self.eval_splits}
        )
        self.confusion: dict[str, list[list[int]]] = {}
        self._updated: set[str] = set()

    @property
    def preprocess(self) -> dict | None:
        """The input preprocessing both stages were trained with."""
        return self.stage1.preprocess

    @classmethod
    def from_checkpoints(
        cls,
        stage1_ckpt: str | Path | Sequence[str | Path],
        stage2_ckpt: str | Path | Sequence[str | Path],
        t1: float | None = None,
        t2: float | None = None,
        eval_splits: Sequence[str] = ("test",),
        fold_bn: bool = False,
    ) -> CascadeModule:
        """Rebuild a trained cascade from its stage checkpoints, without retraining.

        A list of checkpoints for a stage makes it an ensemble of them (``ensemble.StageEnsemble``:
        probabilities averaged). Thresholds default to each stage's own decision threshold (the
        first member's). ``fold_bn`` folds BatchNorm into the convolutions (``models.fusion``):
        faster labelling, frozen weights.
        """
        stages = []
        for paths, expected in (
            (stage1_ckpt, "normal_vs_infected"),
            (stage2_ckpt, "covid_vs_noncovid"),
        ):
            paths = [paths] if isinstance(paths, str | Path) else list(paths)
            members = [load_classifier(path, expected_stage=expected) for path in paths]
            if fold_bn:
                for member in members:
                    fold_batchnorm(member.net)
            stages.append(stage_of(members))
        stage1, stage2 = stages
        t1 = stage1.hparams.threshold if t1 is None else t1
        t2 = stage2.hparams.threshold if t2 is None else t2
        return cls(stage1, stage2, t1=t1, t2=t2, eval_splits=eval_splits).eval()

    # -- inference -------------------------------------------------------------------------
    @torch.no_grad()
    def predict_proba(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(p_infected, p_covid) for each image; p_covid is stage 2's output for every image."""
        return self.stage1.predict_proba(images), self.stage2.predict_proba(images)

    @torch.no_grad()
    def label_proba(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(p_infected, p_covid, spread) where stage 2 runs only on the images stage 1 calls
        infected (p_covid is NaN for the others): what labelling new images needs, at less cost.
        spread: the members' disagreement (``decision.staged_proba``), 0 for single models."""
        return staged_proba(self.stage1, self.stage2, images, self.t1)

    def decide(self, p_infected: torch.Tensor, p_covid: torch.Tensor) -> torch.Tensor:
        """3-class labels (0 normal, 1 non-covid, 2 covid) from the two stages' probabilities."""
        return decide(p_infected, p_covid, self.t1, self.t2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decide(*self.predict_proba(images))

    # -- evaluation ------------------------------------------------------------------------------
    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        images, labels = batch
        split = self.eval_splits[dataloader_idx]
        p_infected, p_covid = self.predict_proba(images)
        self.split_metrics[split].update(
            self.decide(p_infected, p_covid), labels, p_infected, p_covid
        )
        self._updated.add(split)

    def on_test_epoch_end(self) -> None:
        for split in sorted(self._updated):
            values, self.confusion[split] = self.split_metrics[split].compute()
            self.log_dict({f"{split}/{k}": v for k, v in values.items()}, add_dataloader_idx=False)
            self.split_metrics[split].reset()
        self._updated.clear()


class CascadeMetrics(nn.Module):
    """One split's cascade metrics, shared by ``trainer.test`` and ``operating_point``.

    3-class accuracy, macro F1 and per-class precision/recall, the 3x3 confusion matrix, and each
    stage's own binary metrics: stage 1 on every image, stage 2 on the truly infected ones only
    (keys ``stage1/...``, ``stage2/...``; stage 2's are absent when a split has no infected image).
    """

    def __init__(self, t1: float, t2: float) -> None:
        super().__init__()
        self.three_class = multiclass_metrics(CLASS_NAMES, with_auroc=False)
        self.confusion = confusion_matrix(len(CLASS_NAMES))
        self.stage1 = binary_metrics(t1)
        self.stage2 = binary_metrics(t2)
        self._stage2_seen = False

    def update(
        self,
        predicted: torch.Tensor,
        labels: torch.Tensor,
        p_infected: torch.Tensor,
        p_covid: torch.Tensor,
    ) -> None:
        self.three_class.update(predicted, labels)
        self.confusion.update(predicted, labels)
        infected = labels > NORMAL
        self.stage1.update(p_infected, infected.long())
        if infected.any():
            self.stage2.update(p_covid[infected], (labels[infected] == COVID).long())
            self._stage2_seen = True

    def compute(self) -> tuple[dict[str, torch.Tensor], list[list[int]]]:
        values = dict(self.three_class.compute())
        values.update({f"stage1/{k}": v for k, v in self.stage1.compute().items()})
        if self._stage2_seen:
            values.update({f"stage2/{k}": v for k, v in self.stage2.compute().items()})
        return values, self.confusion.compute().long().tolist()

    def reset(self) -> None:
        for metric in (self.three_class, self.confusion, self.stage1, self.stage2):
            metric.reset()
        self._stage2_seen = False


def _check_stage(module: nn.Module, expected: str, name: str) -> None:
    stage = member_stage(module)
    if stage != expected:
        raise CheckpointError(
            f"cascade {name} must be a {expected} classifier, got stage {stage!r}"
        )
