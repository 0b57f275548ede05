"""Chest X-ray data: dataset layouts, decoding, the DataModule, synthetic data and the audit.

``XrayDataModule`` is imported on first use (it pulls in Lightning), so ``predict`` can decode
and prepare images without paying for Lightning's import.
"""

from typing import Any

from .errors import (
    BadDataError,
    BadFilesError,
    BadFileWarning,
    BadImageError,
    DatasetNotFoundError,
    LayoutError,
)
from .images import load_image
from .stages import SPLITS, STAGES
from .transforms import prepare_batch

__all__ = [
    "SPLITS",
    "STAGES",
    "BadDataError",
    "BadFileWarning",
    "BadFilesError",
    "BadImageError",
    "DatasetNotFoundError",
    "LayoutError",
    "XrayDataModule",
    "load_image",
    "prepare_batch",
]


def __getattr__(name: str) -> Any:
    if name == "XrayDataModule":
        from .datamodule import XrayDataModule

        return XrayDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
