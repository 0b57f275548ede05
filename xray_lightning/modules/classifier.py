"""Shared machinery of the binary and 3-class LightningModules: steps, metrics, optimisers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn
from torch.optim.lr_scheduler import OneCycleLR, ReduceLROnPlateau
from torchmetrics import Metric, MetricCollection

SPLITS = ("train", "val", "test")


def plain(config: Any) -> Any:
    """OmegaConf containers to plain dicts/lists (other values unchanged)."""
    if isinstance(config, (DictConfig, ListConfig)):
        return OmegaConf.to_container(config, resolve=True)
    return config


class ClassifierModule(pl.LightningModule):
    """A network trained with one loss; metrics per split; val dataloader 1 is logged as test.

    The module receives built objects (net, loss, partial optimizer/scheduler) and keeps the plain
    configs it was built from (``net_config``, ``loss_config``, ``preprocess``) in its
    hyper-parameters, so a checkpoint alone is enough to rebuild it (see ``modules.checkpoints``).
    ``precision`` and ``channels_last`` record what the run trained with (``auto`` resolved), so a
    resumed run keeps them.
    """

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        stage: str = "normal_vs_infected",
        class_names: Sequence[str] = ("normal", "infected"),
        threshold: float = 0.5,
        net_config: dict | None = None,
        loss_config: dict | None = None,
        preprocess: dict | None = None,
        channels_last: bool = False,
        precision: str | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"task.module.threshold must be in (0, 1), got {threshold}")
        # Plain containers only, so checkpoints load with torch.load(weights_only=True).
        class_names = list(class_names)
        net_config, loss_config, preprocess = (
            plain(net_config),
            plain(loss_config),
            plain(preprocess),
        )
        self.save_hyperparameters(ignore=["net", "loss", "optimizer", "scheduler"], logger=False)
        self.net = net.to(memory_format=torch.channels_last) if channels_last else net
        self.loss_fn = loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.class_names = tuple(class_names)
        base = self.build_metrics()
        self.train_metrics = base.clone(prefix="train/")
        self.val_metrics = base.clone(prefix="val/")
        self.test_metrics = base.clone(prefix="test/")
        self.val_confusion = self.build_confusion()
        self.test_confusion = self.build_confusion()
        self.confusion: dict[str, list[list[int]]] = {}
        # this epoch's matrices, for callbacks.ConfusionImage to draw (the module draws nothing)
        self.new_confusion: dict[str, torch.Tensor] = {}
        self._updated: set[str] = set()

    @property
    def preprocess(self) -> dict | None:
        """The input preprocessing the network was trained with (what a cascade checks)."""
        return self.hparams.get("preprocess")

    # -- to be provided by subclasses -------------------------------------------------------
    def build_metrics(self) -> MetricCollection:
        raise NotImplementedError

    def build_confusion(self) -> Metric:
        raise NotImplementedError

    # -- inference ---------------------------------------------------------------------------
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.hparams.get("channels_last"):
            # NHWC lets oneDNN (CPU, bf16/AMX) and cuDNN pick their fastest convolution kernels
            images = images.contiguous(memory_format=torch.channels_last)
        return self.net(images)

    @torch.no_grad()
    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        """Class-1 probability [B] for binary stages, class probabilities [B, C] otherwise."""
        return self.loss_fn.probabilities(self(images).float())

    # -- steps -------------------------------------------------------------------------------
    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], split: str) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss = self.loss_fn(logits, labels)
        probs = self.loss_fn.probabilities(logits.detach().float())
        getattr(self, f"{split}_metrics").update(probs, labels)
        if split != "train":
            getattr(self, f"{split}_confusion").update(probs, labels)
        self._updated.add(split)
        self.log(
            f"{split}/loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=split == "val",
            batch_size=labels.shape[0],
            add_dataloader_idx=False,
            sync_dist=True,  # the mean over all DDP ranks, not rank zero's share
        )
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._step(batch, "val" if dataloader_idx == 0 else "test")

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._step(batch, "test")

    # -- epoch ends ----------------------------------------------------------------------------
    def _log_split(self, split: str) -> None:
        if split not in self._updated:
            return
        self._updated.discard(split)
        metrics: MetricCollection = getattr(self, f"{split}_metrics")
        # compute() already synced the states over DDP ranks; sync_dist averages equal values
        self.log_dict(metrics.compute(), add_dataloader_idx=False, sync_dist=True)
        metrics.reset()
        if split == "train":
            return
        confusion: Metric = getattr(self, f"{split}_confusion")
        matrix = confusion.compute().cpu().long()
        confusion.reset()
        self.confusion[split] = matrix.tolist()
        self.new_confusion[split] = matrix

    def on_train_epoch_end(self) -> None:
        self._log_split("train")

    def on_validation_epoch_end(self) -> None:
        self._log_split("val")
        self._log_split("test")

    def on_test_epoch_end(self) -> None:
        self._log_split("test")

    # -- optimisation --------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise ValueError(
                "no optimizer given: set the `optimizer` config group (e.g. optimizer=adam)"
            )
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler_class = getattr(self.scheduler_factory, "func", self.scheduler_factory)
        if scheduler_class is OneCycleLR:
            scheduler = self.scheduler_factory(
                optimizer=optimizer, total_steps=int(self.trainer.estimated_stepping_batches)
            )
            config: dict[str, Any] = {"scheduler": scheduler, "interval": "step"}
        else:
            scheduler = self.scheduler_factory(optimizer=optimizer)
            config = {"scheduler": scheduler, "interval": "epoch"}
        if isinstance(scheduler, ReduceLROnPlateau):
            config["monitor"] = "val/loss"
        return {"optimizer": optimizer, "lr_scheduler": config}
