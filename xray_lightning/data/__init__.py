"""Chest X-ray data: dataset layouts, decoding, the DataModule, synthetic data and the audit."""

from .datamodule import XrayDataModule
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
