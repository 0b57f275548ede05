"""One validation pass over a composed training config, when the run starts.

Data: the :class:`~xray_lightning.data.settings.DataSettings` schema (one source of defaults).
Net: the keys must be arguments of the network class it names (values are checked by the class
itself when it is built). Task: stage and thresholds. Every bad key gives one line of one
``ConfigError`` naming the key, the value and what is allowed, before anything is built.
"""

from __future__ import annotations

import inspect
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from xray_lightning.data.settings import STAGE_CHOICES, DataSettings
from xray_lightning.settings import ConfigError, validate

# Filled in by the builders from the data and the loss, never by the user.
DERIVED_NET_KEYS = ("num_outputs", "image_size")


def data_problems(cfg: DictConfig) -> list[str]:
    values = OmegaConf.to_container(cfg.data, resolve=True)
    values.pop("_target_", None)  # type: ignore[union-attr]
    try:
        validate(DataSettings, values, "data")
    except ConfigError as error:
        return str(error).splitlines()
    return []


def net_problems(cfg: DictConfig) -> list[str]:
    target = cfg.net.get("_target_")
    try:
        net_class = get_class(str(target))
    except Exception:  # noqa: BLE001 - Hydra raises several kinds for a bad path
        return [f"net._target_ must name a network class; got {target!r}"]
    allowed = [p for p in inspect.signature(net_class.__init__).parameters if p != "self"]
    problems = []
    for key in cfg.net:
        if key == "_target_":
            continue
        if key not in allowed or key in DERIVED_NET_KEYS:
            settable = ", ".join(k for k in allowed if k not in DERIVED_NET_KEYS)
            problems.append(
                f"net.{key}: unknown key for {net_class.__name__} (known keys: {settable})"
            )
    return problems


def task_problems(cfg: DictConfig) -> list[str]:
    from xray_lightning.operating_point import OperatingPointError, parse_target_recall

    task = cfg.task
    problems = []
    if task.get("stage") not in STAGE_CHOICES:
        allowed = ", ".join(STAGE_CHOICES)
        problems.append(f"task.stage must be one of {allowed}; got {task.get('stage')!r}")
    thresholds = {"task.module.threshold": (task.get("module") or {}).get("threshold", 0.5)}
    cascade = task.get("cascade") or {}
    thresholds |= {f"task.cascade.{k}": cascade.get(k, 0.5) for k in ("t1", "t2")}
    for key, value in thresholds.items():
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not 0 < value < 1:
            problems.append(f"{key} must be a number in (0, 1); got {value!r}")
    members = task.get("members", 1)
    if isinstance(members, bool) or not isinstance(members, int) or members < 1:
        problems.append(
            f"task.members must be a positive integer (1: no ensemble); got {members!r}"
        )
    try:
        parse_target_recall(cascade.get("target_recall"))
    except OperatingPointError as error:
        problems.append(str(error))
    return problems


def check_config(cfg: DictConfig) -> None:
    """Raise one ConfigError listing every bad key of data, net and task (or return)."""
    problems: list[Any] = [*data_problems(cfg), *net_problems(cfg), *task_problems(cfg)]
    if problems:
        raise ConfigError("bad config value(s):\n" + "\n".join(f"  {p}" for p in problems))
