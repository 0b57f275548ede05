"""A cascade's accuracy on one split under the synthetic site shifts of ``shifts``.

The shifts act on the images as the files deliver them (150 px, before the model's own resize,
equalisation and normalisation), then the model's preprocessing runs as ``predict``'s does
(``transforms.prepare_batch``). Used on val to choose recipes and adaptation settings without
looking at test (experiments/accuracy.md, round 3).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from xray_lightning.data.transforms import prepare_batch
from xray_lightning.decision import Probabilities
from xray_lightning.shifts import SITE_SHIFTS, Shift

RAW_PREPROCESSING = {"normalize": True, "equalize": False, "border_crop": 0.0, "denoise": None}


def raw_datamodule_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``XrayDataModule`` arguments for the same split as ``settings`` but the files' own pixels:
    no resize (the expected file size), no preprocessing, no augmentation."""
    raw = dict(settings)
    raw["image_size"] = raw.get("expect_size") or 150
    raw["preprocessing"] = dict(RAW_PREPROCESSING)
    raw["augmentation"] = dict(raw.get("augmentation") or {}) | {"enabled": False}
    return raw


def raw_split(datamodule: Any, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 [N, 1, H, W] images, int64 [N] labels) of one split, in file order."""
    data = datamodule.data
    return data.images[data.rows[split]], datamodule.split_labels(split)


@torch.inference_mode()
def shifted_probabilities(
    cascade: Any,
    images: torch.Tensor,
    labels: torch.Tensor,
    shift: Shift | None,
    batch_size: int = 256,
) -> Probabilities:
    """Both stages' probabilities on every image after ``shift`` (None: the images as they are)."""
    p_inf, p_cov = [], []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        if shift is not None:
            chunk = shift(chunk)
        a, b = cascade.predict_proba(prepare_batch(chunk, cascade.preprocess))
        p_inf.append(a)
        p_cov.append(b)
    return Probabilities(torch.cat(p_inf), torch.cat(p_cov), labels)


def shifted_metrics(
    cascade: Any,
    images: torch.Tensor,
    labels: torch.Tensor,
    shifts: Mapping[str, Shift] | None = None,
) -> dict[str, dict[str, float]]:
    """{"none" and each shift's name: the cascade's metrics (``cascade_metrics`` keys, no split
    prefix)}, plus "mean_shifted": each metric's mean over the shifts."""
    from xray_lightning.operating_point import cascade_metrics

    shifts = SITE_SHIFTS if shifts is None else shifts
    out: dict[str, dict[str, float]] = {}
    for name, shift in {"none": None, **shifts}.items():
        probs = shifted_probabilities(cascade, images, labels, shift)
        metrics, _ = cascade_metrics({"s": probs}, cascade.t1, cascade.t2)
        out[name] = {key.removeprefix("s/"): value for key, value in metrics.items()}
    if shifts:
        keys = out["none"].keys()
        out["mean_shifted"] = {
            key: sum(out[name][key] for name in shifts) / len(shifts) for key in keys
        }
    return out
