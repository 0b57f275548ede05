"""Every config of every group composes with the real tree."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from xray_lightning.train import CONFIG_DIR

GROUPS = ("task", "net", "init", "loss", "optimizer", "scheduler", "trainer", "logger", "data")


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


@pytest.mark.parametrize(
    ("group", "option"), [(g, o) for g in GROUPS for o in options(g)], ids=lambda v: str(v)
)
def test_every_group_option_composes(group: str, option: str) -> None:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"{group}={option}"], return_hydra_config=True)
    assert cfg.hydra.runtime.choices[group] == option
    assert cfg.task.stage in ("normal_vs_infected", "covid_vs_noncovid", "three_class")


def test_defaults_are_the_report_pipeline() -> None:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["seed=7"])
    assert cfg.task.name == "normal_vs_infected"
    assert cfg.callbacks.model_checkpoint.monitor.startswith("val/")
    # the training seed moves shuffling/augmentation, never the validation hold-out
    assert cfg.data.seed == 7
    assert cfg.data.split_seed == 0
    optimizer = instantiate(cfg.optimizer)
    assert optimizer.func.__name__ == "Adam"


def test_every_group_has_options() -> None:
    for group in GROUPS:
        assert options(group), f"conf/{group} has no options"


def test_the_ensemble_experiment_is_five_main_jobs() -> None:
    """experiment=ensemble: the main job's recipe, five members; nothing else differs."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        fast = compose("train", overrides=["experiment=fast"])
        ensemble = compose("train", overrides=["experiment=ensemble"])
    assert fast.task.members == 1 and ensemble.task.members == 5
    ensemble.task.members = 1
    assert ensemble == fast
