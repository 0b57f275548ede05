"""Declared site adaptation (transductive, opt-in): BatchNorm statistics re-estimated on the
unlabelled images being labelled (AdaBN, Li et al. 2016).

A network trained at one site normalises its features with that site's statistics; re-estimating
them on a batch from another site removes the part of the shift that lives in those statistics.
It uses the images being predicted, so every number it gives is *adapted* and reported apart
from the inductive ones (``evaluate`` prints two blocks). Its settings (which stages, the
minimum batch) were chosen on val images under synthetic site shifts, never on test
(experiments/adaptation/README.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from xray_lightning.errors import XrayLightningError
from xray_lightning.labeller import stage_nets
from xray_lightning.models.fusion import fold_batchnorm

# Chosen on val under synthetic site shifts (experiments/adaptation/README.md): with 16 or 32
# images adapting cost up to 2.5 points of val accuracy, from 64 on it cost at most 0.4.
MIN_IMAGES = 64
# Both stages (stage 2 on the images stage 1 calls infected): the higher mean accuracy over the
# shifted val sets (0.8061 against 0.8053 for stage 1 alone and 0.8093 inductive).
STAGES = ("stage1", "stage2")
CHUNK = 256


class AdaptError(XrayLightningError):
    """Too few images to adapt to, or a network without BatchNorm."""


def batchnorms(net: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def reestimate_batchnorm(net: nn.Module, inputs: torch.Tensor, chunk: int = CHUNK) -> None:
    """Replace ``net``'s BatchNorm running statistics by those of ``inputs`` [N,1,H,W] (the
    average over chunks of ``chunk`` images); the weights are left as they are."""
    layers = batchnorms(net)
    if not layers:
        raise AdaptError(f"{type(net).__name__} has no BatchNorm layer to re-estimate")
    momenta = [layer.momentum for layer in layers]
    channels_last = next(net.parameters()).is_contiguous(memory_format=torch.channels_last)
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # a cumulative average over the chunks
        layer.train()
    try:
        for part in inputs.split(chunk):
            if channels_last:
                part = part.contiguous(memory_format=torch.channels_last)
            net(part)
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
            layer.eval()


def check_enough(count: int, min_images: int | None = None, what: str = "images") -> None:
    min_images = MIN_IMAGES if min_images is None else min_images
    if count < min_images:
        raise AdaptError(
            f"--adapt needs at least {min_images} {what} to re-estimate BatchNorm statistics "
            f"from; got {count}. Label them without --adapt, or add images from the same site"
        )


def adapt_cascade(
    cascade: Any,
    inputs: torch.Tensor,
    stages: Sequence[str] = STAGES,
    min_images: int | None = None,
    fold: bool = True,
) -> dict[str, int]:
    """Re-estimate the BatchNorm statistics of the named stages of an *unfolded* cascade
    (``Labeller`` or ``CascadeModule``) on the model inputs ``inputs``; stage 2 on the images the
    (adapted) stage 1 calls infected. Folds BatchNorm afterwards when ``fold``. Returns how many
    images each stage was adapted on."""
    min_images = MIN_IMAGES if min_images is None else min_images
    check_enough(len(inputs), min_images)
    used: dict[str, int] = {}
    if "stage1" in stages:
        for net in stage_nets(cascade.stage1):
            reestimate_batchnorm(net, inputs)
        used["stage1"] = len(inputs)
    if "stage2" in stages:
        p_infected = torch.cat([cascade.stage1.predict_proba(part) for part in inputs.split(CHUNK)])
        called = inputs[p_infected >= cascade.t1]
        if len(called) >= min_images:  # too few called infected: stage 2 keeps its statistics
            for net in stage_nets(cascade.stage2):
                reestimate_batchnorm(net, called)
            used["stage2"] = len(called)
    if fold:
        for stage in (cascade.stage1, cascade.stage2):
            for net in stage_nets(stage):
                fold_batchnorm(net)
    return used
