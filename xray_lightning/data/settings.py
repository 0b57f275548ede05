"""The data config's schema: every key of ``conf/data/xray.yaml``, its default and its rule.

``XrayDataModule``'s keyword defaults come from ``DATA`` (an instance of :class:`DataSettings`),
the batched transforms take the validated ``preprocessing``/``augmentation`` dicts, and
``tests/test_settings.py`` keeps the YAML equal to these defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xray_lightning.settings import (
    flag,
    integer,
    number,
    one_of,
    optional_number,
    optional_text,
    setting,
)

from .images import EXPECT_MODES
from .layout import LAYOUTS
from .stages import STAGES

LAYOUT_CHOICES = ("auto", *LAYOUTS)
STAGE_CHOICES = tuple(STAGES)
EXPECT_MODE_CHOICES = (*EXPECT_MODES, None)
IMBALANCE_CHOICES = ("none", "loss", "sampler")
ON_BAD_FILE_CHOICES = ("error", "skip")
DENOISE_CHOICES = (None, "median", "gaussian")
INTERPOLATION_CHOICES = ("bilinear", "nearest")


@dataclass(frozen=True)
class Preprocessing:
    """Applied once to the decoded uint8 images (and to every new image ``predict`` labels)."""

    normalize: bool = setting(True, flag())
    equalize: bool = setting(False, flag())
    border_crop: float = setting(0.0, number(0.0, 0.5))
    denoise: str | None = setting(
        None, one_of(*DENOISE_CHOICES, aliases={"none": None, "null": None, "None": None})
    )


@dataclass(frozen=True)
class Augmentation:
    """Random per-image transforms of training batches."""

    enabled: bool = setting(False, flag())
    rotation: float = setting(10.0, number(0.0, 180.0))
    scale: float = setting(0.1, number(0.0, 1.0))
    translate: float = setting(0.05, number(0.0, 1.0))
    brightness: float = setting(0.1, number(0.0, 1.0))
    contrast: float = setting(0.1, number(0.0, 1.0))
    hflip: bool = setting(False, flag())
    interpolation: str = setting("bilinear", one_of(*INTERPOLATION_CHOICES))
    blur: float = setting(0.0, number(0.0, 5.0))
    site: float = setting(0.0, number(0.0, 1.0, high_inclusive=True))


@dataclass(frozen=True)
class DataSettings:
    """``XrayDataModule``'s arguments (``_target_`` aside)."""

    root: str | None = setting(None, optional_text())
    stage: str = setting("normal_vs_infected", one_of(*STAGE_CHOICES))
    layout: str = setting("auto", one_of(*LAYOUT_CHOICES))
    image_size: int = setting(150, integer(1))
    expect_size: int | None = setting(150, integer(1, allow_none=True))
    expect_mode: str | None = setting("L", one_of(*EXPECT_MODE_CHOICES))
    val_fraction: float = setting(0.1, number(0.0, 1.0))
    split_seed: int = setting(0, integer(0))
    seed: int = setting(0, integer(0))
    batch_size: int = setting(32, integer(1))
    eval_batch_size: int = setting(256, integer(1))
    eval_test_each_epoch: bool = setting(True, flag())
    imbalance: str = setting("none", one_of(*IMBALANCE_CHOICES))
    on_bad_file: str = setting("error", one_of(*ON_BAD_FILE_CHOICES))
    num_workers: int = setting(0, integer(0))
    cache_dir: str | None = setting(None, optional_text())
    mean: float | None = setting(None, optional_number())
    std: float | None = setting(None, optional_number())
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    augmentation: Augmentation = field(default_factory=Augmentation)


DATA = DataSettings()
