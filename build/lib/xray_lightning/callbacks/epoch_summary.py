"""One line per epoch: when it ended, train loss, val loss, val accuracy/precision/recall."""

from __future__ import annotations

import time

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_info

DEFAULT_KEYS = ("train/loss", "val/loss", "val/acc", "val/precision", "val/recall")


class EpochSummary(pl.Callback):
    """Prints a compact summary line at the end of every training epoch (after validation)."""

    def __init__(self, keys: tuple[str, ...] | list[str] = DEFAULT_KEYS) -> None:
        self.keys = tuple(keys)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        parts = [f"{key} {float(metrics[key]):.4f}" for key in self.keys if key in metrics]
        stamp = time.strftime("%H:%M:%S")
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        rank_zero_info(f"[{stamp}] epoch {trainer.current_epoch + 1}/{total}  " + "  ".join(parts))
