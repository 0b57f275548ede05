"""Dataset figures for the notebooks: sample images per class, and what each preprocessing
switch does to one image (the same functions the DataModule applies)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from xray_lightning.data.images import load_image
from xray_lightning.data.layout import CLASSES3, index_dataset
from xray_lightning.data.transforms import preprocess_u8

SWITCHES: dict[str, dict[str, Any]] = {
    "original": {},
    "equalize": {"equalize": True},
    "border_crop 0.1": {"border_crop": 0.1},
    "denoise median": {"denoise": "median"},
    "denoise gaussian": {"denoise": "gaussian"},
}


def sample_paths(root: str | Path, per_class: int = 4, split: str = "train") -> dict[str, list]:
    """The first ``per_class`` files of each class in one official split."""
    index = index_dataset(root)
    out: dict[str, list[Path]] = {name: [] for name in CLASSES3}
    for rel, s, label in zip(index.relpaths, index.splits, index.labels, strict=True):
        if s == split and label is not None and len(out[CLASSES3[label]]) < per_class:
            out[CLASSES3[label]].append(index.root / rel)
    return out


def samples_figure(root: str | Path, per_class: int = 4, image_size: int = 150) -> Figure:
    """One row per class: ``per_class`` train images."""
    paths = sample_paths(root, per_class)
    fig = Figure(figsize=(2.2 * per_class, 2.4 * len(paths)))
    axes = fig.subplots(len(paths), per_class, squeeze=False)
    for r, (name, files) in enumerate(paths.items()):
        for c in range(per_class):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(files):
                ax.axis("off")
                continue
            ax.imshow(load_image(files[c], image_size).numpy(), cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"{name}: {files[c].name}", fontsize=8)
    fig.suptitle("Train images per class")
    fig.tight_layout()
    return fig


def preprocessing_figure(
    image: torch.Tensor, switches: Mapping[str, Mapping[str, Any]] = SWITCHES
) -> Figure:
    """Each preprocessing switch applied alone to a uint8 image [H,W], with its histogram, and
    ``normalize`` last ((x/255 - mean) / std; with this image's own mean/std here, the train
    split's in training)."""
    n = len(switches)
    fig = Figure(figsize=(2.5 * (n + 1), 5.0))
    axes = fig.subplots(2, n + 1, squeeze=False)
    for k, (name, switch) in enumerate(switches.items()):
        out = preprocess_u8(image[None], dict(switch), image.shape[-1])[0]
        axes[0, k].imshow(out.numpy(), cmap="gray", vmin=0, vmax=255)
        axes[0, k].set_title(name, fontsize=9)
        axes[0, k].set_xticks([])
        axes[0, k].set_yticks([])
        axes[1, k].hist(out.numpy().ravel(), bins=64, range=(0, 255), color="tab:blue")
        axes[1, k].set_yticks([])
    x = image.double() / 255.0
    normalized = ((x - x.mean()) / x.std().clamp(min=1e-6)).numpy()
    axes[0, n].imshow(normalized, cmap="gray")
    axes[0, n].set_title("normalize\n(this image's mean/std)", fontsize=8)
    axes[0, n].set_xticks([])
    axes[0, n].set_yticks([])
    axes[1, n].hist(np.ravel(normalized), bins=64, color="tab:orange")
    axes[1, n].set_yticks([])
    fig.suptitle("What each preprocessing switch does (data.preprocessing.*)")
    fig.tight_layout()
    return fig
