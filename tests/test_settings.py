"""One source of data defaults (the schema), kept equal to the YAML; one error line per bad key."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from xray_lightning.config_check import check_config
from xray_lightning.data import XrayDataModule
from xray_lightning.data.settings import DATA, DataSettings
from xray_lightning.settings import ConfigError, defaults, validate
from xray_lightning.train import CONFIG_DIR

# Keys the YAML wires to other config groups (interpolations): their values live there.
WIRED = {"stage": "${task.stage}", "seed": "${seed}", "cache_dir": "${paths.cache_dir}"}


def test_the_yaml_data_defaults_equal_the_schema() -> None:
    raw = OmegaConf.to_container(OmegaConf.load(Path(CONFIG_DIR) / "data" / "xray.yaml"))
    raw.pop("_target_")
    schema = defaults(DataSettings)
    assert set(raw) == set(schema), "conf/data/xray.yaml and DataSettings list other keys"
    for key, value in raw.items():
        if key in WIRED:
            assert value == WIRED[key], f"data.{key} is no longer wired to {WIRED[key]}"
        else:
            assert value == schema[key], f"data.{key}: YAML {value!r}, schema {schema[key]!r}"


def test_the_datamodule_defaults_are_the_schema() -> None:
    params = inspect.signature(XrayDataModule.__init__).parameters
    schema = defaults(DataSettings)
    assert set(params) - {"self"} == set(schema)
    for key, param in params.items():
        if key in ("self", "preprocessing", "augmentation"):
            continue
        assert param.default == getattr(DATA, key), key


def test_every_bad_key_gets_its_own_line_with_value_and_allowed() -> None:
    bad = {
        "batch_size": 0,
        "imbalance": "focal",
        "typo": 1,
        "preprocessing": {"border_crop": 0.9, "equalise": True},
        "augmentation": {"interpolation": "bicubic"},
    }
    with pytest.raises(ConfigError) as caught:
        validate(DataSettings, bad, "data")
    lines = str(caught.value).splitlines()
    assert len(lines) == 6
    text = str(caught.value)
    assert "data.batch_size must be a positive integer; got 0" in text
    assert "data.imbalance must be one of none, loss, sampler; got 'focal'" in text
    assert "data.typo: unknown key" in text
    assert "data.preprocessing.border_crop must be a number in [0, 0.5); got 0.9" in text
    assert "data.preprocessing.equalise: unknown key" in text
    assert "data.augmentation.interpolation must be one of bilinear, nearest" in text


def test_a_run_is_checked_once_before_anything_is_built(tmp_path: Path) -> None:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "data.batch_size=-3",
                "net=cnn_bn",
                "+net.width=4",
                "task=cascade",
                "task.cascade.t1=1.5",
                f"paths.output_dir={tmp_path}",
            ],
        )
    with pytest.raises(ConfigError) as caught:
        check_config(cfg)
    text = str(caught.value)
    assert "data.batch_size must be a positive integer; got -3" in text
    assert "net.width: unknown key for CNNBN (known keys: in_channels, channels" in text
    assert "task.cascade.t1 must be a number in (0, 1); got 1.5" in text
    assert not any(tmp_path.iterdir())


def test_the_shipped_configs_pass_the_check() -> None:
    for experiment in ("fast", "best", "report_final", "demo"):
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose("train", overrides=[f"experiment={experiment}", "paths.output_dir=x"])
        check_config(cfg)
