"""Labelling new images with a trained cascade in plain PyTorch: no Lightning, no torchmetrics.

``predict`` spends most of a small batch's time importing, so it rebuilds the two stage networks
straight from their checkpoints (the same allow-listed registries as ``modules.checkpoints``),
folds BatchNorm into the convolutions and keeps the memory format the stages trained with.
``CascadeModule.from_checkpoints`` gives the same probabilities (``tests/test_inference.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xray_lightning.decision import (
    CLASS_NAMES,
    check_same_input,
    check_thresholds,
    decide,
    staged_proba,
)
from xray_lightning.ensemble import StageEnsemble, stage_of
from xray_lightning.errors import CheckpointError
from xray_lightning.models.fusion import fold_batchnorm
from xray_lightning.modules.checkpoints import build_parts, weights_mismatch
from xray_lightning.onnx_stage import check_runtime, onnx_net


class StageNet(nn.Module):
    """One trained binary stage: its network, its loss (for probabilities) and its metadata."""

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        stage: str,
        threshold: float,
        preprocess: dict[str, Any],
        channels_last: bool,
    ) -> None:
        super().__init__()
        self.net, self.loss = net, loss
        self.stage, self.threshold = stage, threshold
        self.preprocess, self.channels_last = preprocess, channels_last
        self.onnx: Any = None  # an onnx_stage.OnnxNet: the same network, run by ONNX Runtime

    @torch.inference_mode()
    def proba(self, images: torch.Tensor) -> torch.Tensor:
        if self.onnx is not None:
            return self.loss.probabilities(self.onnx(images).float())
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.loss.probabilities(self.net(images).float())

    predict_proba = proba  # the name BinaryClassifier uses (runs.split_predictions takes either)


def load_stage(
    path: str | Path, expected_stage: str, fold_bn: bool = True, runtime: str = "torch"
) -> StageNet:
    """A binary stage from its checkpoint (eval mode, CPU), or :class:`CheckpointError`.
    ``runtime`` ``onnx``/``auto`` runs a folded network by ONNX Runtime (``onnx_stage``)."""
    checkpoint, hparams, net, loss = build_parts(path, expected_stage)
    parts: dict[str, dict[str, torch.Tensor]] = {"net": {}, "loss_fn": {}}
    for key, value in checkpoint["state_dict"].items():
        owner, _, name = key.partition(".")
        if owner not in parts:
            raise CheckpointError(f"{path}: unexpected weights {key!r} in the state_dict")
        parts[owner][name] = value
    try:
        net.load_state_dict(parts["net"])
        if parts["loss_fn"]:
            loss.load_state_dict(parts["loss_fn"])
    except RuntimeError as error:
        raise weights_mismatch(path, hparams, error) from None
    net.eval()
    loss.eval()
    if fold_bn:
        fold_batchnorm(net)
    channels_last = bool(hparams.get("channels_last"))
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    threshold = float(hparams.get("threshold", 0.5))
    preprocess = dict(hparams.get("preprocess") or {})
    stage = StageNet(net, loss, expected_stage, threshold, preprocess, channels_last).eval()
    if check_runtime(runtime) != "torch" and fold_bn:  # onnx runs frozen networks only
        side = int(preprocess.get("image_size") or net.image_size[0])
        stage.onnx = onnx_net(path, net, side, required=runtime == "onnx")
    return stage


def stage_nets(stage: Any) -> list[nn.Module]:
    """The networks of one cascade stage: its own, or every member's of an ensemble (a
    ``StageNet`` here, a ``BinaryClassifier`` in ``CascadeModule``, or a ``StageEnsemble`` of
    either: all have ``net``, ensembles ``members``)."""
    members = getattr(stage, "members", None)
    return [member.net for member in members] if members is not None else [stage.net]


def load_stages(
    paths: str | Path | Sequence[str | Path],
    expected_stage: str,
    fold_bn: bool = True,
    runtime: str = "torch",
) -> StageNet | StageEnsemble:
    """One checkpoint: its StageNet; several: their StageEnsemble."""
    if isinstance(paths, str | Path):
        return load_stage(paths, expected_stage, fold_bn, runtime)
    return stage_of([load_stage(path, expected_stage, fold_bn, runtime) for path in paths])


class Labeller:
    """Two stages and their thresholds: ``label_proba`` then ``decide``, as ``CascadeModule``."""

    class_names = CLASS_NAMES

    def __init__(
        self,
        stage1: StageNet | StageEnsemble,
        stage2: StageNet | StageEnsemble,
        t1: float,
        t2: float,
    ) -> None:
        check_same_input(stage1.preprocess, stage2.preprocess)
        self.stage1, self.stage2 = stage1, stage2
        self.t1, self.t2 = check_thresholds(t1, t2)

    @classmethod
    def from_checkpoints(
        cls,
        stage1_ckpt: str | Path | Sequence[str | Path],
        stage2_ckpt: str | Path | Sequence[str | Path],
        t1: float | None = None,
        t2: float | None = None,
        fold_bn: bool = True,
        runtime: str = "torch",
    ) -> Labeller:
        """Thresholds default to each stage's own decision threshold (the first member's). A
        list of checkpoints for a stage makes it an ensemble of them. ``fold_bn=False`` keeps
        BatchNorm as it is (``adapt`` re-estimates it, then folds). ``runtime``: ``torch``,
        ``onnx`` (ONNX Runtime, ~1.5x faster on a CPU; ``onnx_stage``) or ``auto`` (onnx where
        it is installed and works, else torch); with ``fold_bn=False`` always torch."""
        stage1 = load_stages(stage1_ckpt, "normal_vs_infected", fold_bn, runtime)
        stage2 = load_stages(stage2_ckpt, "covid_vs_noncovid", fold_bn, runtime)
        return cls(
            stage1,
            stage2,
            stage1.threshold if t1 is None else t1,
            stage2.threshold if t2 is None else t2,
        )

    @property
    def preprocess(self) -> dict[str, Any]:
        return self.stage1.preprocess

    def label_proba(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(p_infected, p_covid, spread); stage 2 only where stage 1 says infected
        (``staged_proba``; spread: the members' disagreement, 0 for single models)."""
        return staged_proba(self.stage1, self.stage2, images, self.t1)

    def predict_proba(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(p_infected, p_covid) of both stages for every image (what measuring needs)."""
        return self.stage1.proba(images), self.stage2.proba(images)

    def decide(self, p_infected: torch.Tensor, p_covid: torch.Tensor) -> torch.Tensor:
        return decide(p_infected, p_covid, self.t1, self.t2)

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        for stage in (self.stage1, self.stage2):
            for net in stage_nets(stage):
                yield from net.parameters()
