"""Turning a composed Hydra config into objects: datamodule, loss, net, module, trainer."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from xray_lightning.modules.classifier import ClassifierModule


def build_datamodule(cfg: DictConfig, **overrides: Any) -> pl.LightningDataModule:
    """The DataModule of ``cfg.data``, set up for fitting (splits, cache, train statistics)."""
    datamodule = instantiate(cfg.data, **overrides)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def loss_config(cfg: DictConfig, datamodule: Any) -> dict[str, Any]:
    """The loss config completed with what only the data knows (classes, imbalance weights)."""
    config: dict[str, Any] = OmegaConf.to_container(cfg.loss, resolve=True)  # type: ignore[assignment]
    config["num_classes"] = datamodule.num_classes
    if cfg.data.get("imbalance") == "loss":
        config["class_weights"] = [float(w) for w in datamodule.class_weights()]
    return config


def net_config(cfg: DictConfig, num_outputs: int) -> dict[str, Any]:
    """The model config completed with the output width and input size."""
    config: dict[str, Any] = OmegaConf.to_container(cfg.model, resolve=True)  # type: ignore[assignment]
    config["num_outputs"] = num_outputs
    config["image_size"] = int(cfg.data.image_size)
    return config


def build_module(cfg: DictConfig, datamodule: Any) -> ClassifierModule:
    """The LightningModule of ``cfg.task.module`` with its net (initialised), loss and optimizer."""
    loss_cfg = loss_config(cfg, datamodule)
    loss: nn.Module = instantiate(loss_cfg)
    net_cfg = net_config(cfg, loss.num_logits)
    net: nn.Module = instantiate(net_cfg)
    init_fn = instantiate(cfg.init)
    init_fn(net)
    return instantiate(
        cfg.task.module,
        _recursive_=False,  # net_config/loss_config stay plain dicts (they carry _target_ keys)
        net=net,
        loss=loss,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        stage=cfg.task.stage,
        class_names=list(datamodule.class_names),
        net_config=net_cfg,
        loss_config=loss_cfg,
        preprocess=datamodule.preprocess_spec(),
        channels_last=bool(cfg.get("channels_last", False)),
    )


def build_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """Every entry of ``cfg.callbacks`` that has a ``_target_`` (null entries switch one off)."""
    entries = cfg.get("callbacks") or {}
    return [instantiate(entry) for entry in entries.values() if entry and "_target_" in entry]


def build_loggers(cfg: DictConfig) -> list[Any]:
    """Every entry of ``cfg.logger`` that has a ``_target_``."""
    entries = cfg.get("logger") or {}
    return [instantiate(entry) for entry in entries.values() if entry and "_target_" in entry]


def build_trainer(cfg: DictConfig) -> pl.Trainer:
    """The Trainer of ``cfg.trainer`` with the configured callbacks and loggers."""
    loggers = build_loggers(cfg)
    callbacks = build_callbacks(cfg)
    if not loggers:
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.LearningRateMonitor)]
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
