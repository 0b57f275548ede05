"""Stops training at the first NaN/inf loss, naming the step and a likely cause."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from xray_lightning.errors import NonFiniteLossError


class FiniteLossGuard(pl.Callback):
    """Raises :class:`NonFiniteLossError` as soon as a training step returns a non-finite loss."""

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None or torch.isfinite(loss).all():
            return
        lrs = [group["lr"] for opt in trainer.optimizers for group in opt.param_groups]
        lr_text = ", ".join(f"{lr:g}" for lr in lrs) or "unknown"
        raise NonFiniteLossError(
            f"training loss became {float(loss)} at epoch {trainer.current_epoch}, "
            f"global step {trainer.global_step} (batch {batch_idx}); learning rate {lr_text}. "
            "Likely cause: the learning rate is too high for this optimizer/loss (try a smaller "
            "optimizer.lr), or the inputs are not normalised (data.preprocessing.normalize=true)."
        )
