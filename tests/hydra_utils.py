"""Composing the real config tree for tests: small synthetic data, outputs under tmp_path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from PIL import Image

from xray_lightning.train import CONFIG_DIR

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def image_side(root: Path) -> int:
    """Side of the (square) images of a dataset, read off its first JPEG."""
    first = next(p for p in sorted(Path(root).rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES)
    with Image.open(first) as image:
        return image.size[0]


def compose_train(
    data_root: Path,
    output_dir: Path,
    overrides: Sequence[str] = (),
    fast: bool = True,
) -> DictConfig:
    """``conf/train.yaml`` composed with test-sized settings, then ``overrides``."""
    side = image_side(data_root)
    base = [
        f"data.root={data_root}",
        f"data.expect_size={side}",
        f"data.image_size={min(side, 64)}",  # small inputs keep the many test runs quick
        "data.cache_dir=null",
        "data.batch_size=16",
        "trainer.enable_progress_bar=false",
    ]
    if fast:
        base.append("trainer.fast_dev_run=true")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[*base, *overrides], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg
