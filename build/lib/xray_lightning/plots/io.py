"""Saving figures as PNG and logging PNGs to TensorBoard as images."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from xray_lightning.errors import XrayLightningError

DPI = 110


class FigureInputError(XrayLightningError):
    """A run lacks what a figure needs (event files, checkpoints, images)."""


def save_figure(fig: Figure, path: str | Path, dpi: int = DPI) -> Path:
    """Write ``fig`` as a PNG (parent folders created). Figures here are plain ``Figure`` objects
    (no pyplot state), so nothing needs closing: the figure is freed with its last reference."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def log_pngs_to_tensorboard(
    pngs: Mapping[str, str | Path], log_dir: str | Path, prefix: str = "report", step: int = 0
) -> Path:
    """Add each PNG as an image ``{prefix}/{name}`` to a TensorBoard event file in ``log_dir``."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(log_dir))
    try:
        for name, png in pngs.items():
            with Image.open(png) as image:
                array = np.asarray(image.convert("RGB"))
            writer.add_image(f"{prefix}/{name}", array, step, dataformats="HWC")
    finally:
        writer.close()
    return Path(log_dir)
