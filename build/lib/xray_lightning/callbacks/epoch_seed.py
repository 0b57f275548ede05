"""Reseeds the global RNGs before each epoch's first training step from (seed, epoch, rank).

Dropout (and anything else drawing from the global generators) then depends only on the run's
seed and the epoch, not on how many numbers were drawn before: a run stopped after epoch k and
resumed from its checkpoint replays epoch k+1 exactly like an uninterrupted run. (Saving the RNG
state in the checkpoint is not enough: Lightning and the DataLoader draw from it between the
checkpoint and the next step, at different points in a fresh and a continuing process; for the
same reason the seed is set at the first batch, not in ``on_train_epoch_start``.)
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

_MIX = 1_000_003  # a prime, so (seed, epoch, rank) triples map to distinct seeds in practice


class EpochSeed(pl.Callback):
    """Calls ``torch.manual_seed`` (all devices), numpy's and Python's seeding each epoch."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def epoch_seed(self, epoch: int, rank: int = 0) -> int:
        return ((self.seed * _MIX + epoch) * _MIX + rank) % (2**32)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx != 0:
            return
        value = self.epoch_seed(trainer.current_epoch, trainer.global_rank)
        torch.manual_seed(value)
        np.random.seed(value)
        random.seed(value)
