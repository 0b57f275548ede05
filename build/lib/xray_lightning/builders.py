"""Turning a composed Hydra config into objects: datamodule, loss, net, module, trainer."""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from xray_lightning import hardware, quiet  # noqa: F401 - quiet: silences log noise
from xray_lightning.modules.classifier import ClassifierModule

log = logging.getLogger(__name__)


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
    """The net config completed with the output width and input size."""
    config: dict[str, Any] = OmegaConf.to_container(cfg.net, resolve=True)  # type: ignore[assignment]
    config["num_outputs"] = num_outputs
    config["image_size"] = int(cfg.data.image_size)
    return config


def build_module(cfg: DictConfig, datamodule: Any) -> ClassifierModule:
    """The LightningModule of ``cfg.task.module`` with its net (initialised), loss and optimizer.

    ``auto`` precision / channels_last still in ``cfg`` are resolved first (in place).
    """
    if needs_resolving(cfg):
        resolve_hardware(cfg)
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
        precision=str(cfg.trainer.get("precision")),
    )


def build_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """Every entry of ``cfg.callbacks`` that has a ``_target_`` (null entries switch one off),
    less the progress bar when ``trainer.enable_progress_bar`` is false."""
    entries = cfg.get("callbacks") or {}
    callbacks = [instantiate(entry) for entry in entries.values() if entry and "_target_" in entry]
    if not cfg.trainer.get("enable_progress_bar", True):  # Lightning refuses a bar it cannot show
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.ProgressBar)]
    return callbacks


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


def checkpoint_settings(ckpt_path: Any) -> dict[str, Any]:
    """The precision and memory format a checkpoint was trained with (empty if it predates them)."""
    from xray_lightning.modules.checkpoints import read_checkpoint

    hparams = read_checkpoint(ckpt_path).get("hyper_parameters") or {}
    keys = ("precision", "channels_last")
    return {key: hparams[key] for key in keys if hparams.get(key) not in (None, "None", "auto")}


def needs_resolving(cfg: DictConfig) -> bool:
    """Whether ``trainer.precision`` or ``channels_last`` is still ``auto``."""
    return hardware.AUTO in (str(cfg.trainer.get("precision")), str(cfg.get("channels_last")))


def resolve_hardware(cfg: DictConfig) -> dict[str, Any]:
    """Replace ``trainer.precision: auto`` and ``channels_last: auto`` by this machine's fastest
    choice (see ``xray_lightning.hardware``), in place; return what was chosen and why.

    Explicit values win. A resumed run (``ckpt_path``) keeps the checkpoint's settings.
    """
    requested_precision = cfg.trainer.get("precision", hardware.AUTO)
    requested_cl = hardware.check_channels_last(cfg.get("channels_last", hardware.AUTO))
    saved = checkpoint_settings(cfg.ckpt_path) if cfg.get("ckpt_path") else {}
    accelerator = str(cfg.trainer.get("accelerator", "cpu"))
    if requested_precision == hardware.AUTO and "precision" in saved:
        precision, precision_why = str(saved["precision"]), "kept from the checkpoint"
    else:
        precision, precision_why = hardware.resolve_precision(requested_precision, accelerator)
    if requested_cl == hardware.AUTO and "channels_last" in saved:
        channels_last, cl_why = bool(saved["channels_last"]), "kept from the checkpoint"
    elif requested_cl == hardware.AUTO:
        net_cfg = net_config(cfg, 1)
        device = torch.device("cuda" if accelerator in ("gpu", "cuda") else "cpu")
        channels_last, cl_why = hardware.probe_channels_last(
            lambda: instantiate(net_cfg), net_cfg, precision, device, cfg.paths.get("cache_dir")
        )
    else:
        channels_last, cl_why = bool(requested_cl), "set explicitly"
    with open_dict(cfg):
        cfg.trainer.precision = precision
        cfg.channels_last = channels_last
    cpu = hardware.cpu_info()
    info = {
        "precision": precision,
        "precision_reason": precision_why,
        "channels_last": channels_last,
        "channels_last_reason": cl_why,
        "accelerator": accelerator,
        "cpu": cpu.model,
        "isa": cpu.isa,
        "torch_threads": torch.get_num_threads(),
    }
    log.info(
        "precision %s (%s); channels_last %s (%s); %s, %s",
        precision,
        precision_why,
        channels_last,
        cl_why,
        cpu.model,
        cpu.isa,
    )
    return info
