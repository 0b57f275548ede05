"""Checkpoint writing for the trainer: ``RunCheckpoint`` and the ``AtomicCheckpointIO`` plugin.

``RunCheckpoint`` is a ModelCheckpoint whose ``last.ckpt`` is rewritten after every validation,
as resume needs.

Lightning 2.x saves ``last.ckpt`` only in a step where it also saved a top-k checkpoint: with
``monitor=val/acc`` and ``save_top_k=1`` that is only when val/acc improves, so a run killed after
epoch 3 of 6 whose best was epoch 1 resumed from epoch 1. Here the last checkpoint follows every
validation, new best or not.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import ModelCheckpoint

from xray_lightning.durable import save_torch_atomic


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with ``durable.save_torch_atomic``: a save killed midway or a
    full disk leaves the previous checkpoint intact and no partial file behind."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO.save_checkpoint takes no storage_options")
        save_torch_atomic(checkpoint, path)


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` + ``last.ckpt`` at every save point (see module docstring)."""

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_missed(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_missed(trainer)

    def _save_last_if_missed(self, trainer: pl.Trainer) -> None:
        if (
            self.save_last
            and not self._should_skip_saving_checkpoint(trainer)
            and self._last_global_step_saved != trainer.global_step
        ):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
