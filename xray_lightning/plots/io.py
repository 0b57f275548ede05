"""Saving figures as PNG and logging PNGs to TensorBoard as images."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

from xray_lightning.errors import XrayLightningError  # noqa: E402

DPI = 110


class FigureInputError(XrayLightningError):
    """A run lacks what a figure needs (event files, checkpoints, images)."""


def save_figure(fig: Figure, path: str | Path, dpi: int = DPI) -> Path:
    """Write ``fig`` as a PNG (parent folders created) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
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
