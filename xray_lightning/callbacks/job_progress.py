"""A progress bar a user can plan with: the stage, the epoch of N, and an ETA for the whole job.

Lightning's bar shows ``Epoch 0: 14% 20/147 [03:55<24:54]``: the time left in this epoch only.
``JobProgressBar`` names the stage (``stage 1/2 normal_vs_infected``) and the epoch out of
``max_epochs``, and adds ``job ETA``: the seconds per training batch measured so far in this
stage (validation included once an epoch has ended) times the batches still to come in this
stage and, for a cascade, in the stages after it (``JobPlan.later_images``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar


@dataclass
class JobPlan:
    """Where this fit sits in the job: stage ``stage`` of ``stages`` (of ensemble member
    ``member`` of ``members``), and the work after it."""

    stage: int = 1
    stages: int = 1
    name: str = ""
    member: int = 1
    members: int = 1
    later_images: int = 0  # training images x epochs of the stages after this one


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return (
        f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
        if hours
        else f"{rest // 60:02d}:{rest % 60:02d}"
    )


class JobClock:
    """Seconds per training batch since training started -> seconds left in the whole job."""

    def __init__(self) -> None:
        self.plan = JobPlan()
        self.started: float | None = None
        self.done = 0
        self.total = 0
        self.batch_images = 0

    def start(self, trainer: pl.Trainer) -> None:
        self.started, self.done = time.perf_counter(), 0
        per_epoch = trainer.num_training_batches
        epochs_left = max(1, (trainer.max_epochs or 1) - trainer.current_epoch)
        self.total = int(per_epoch * epochs_left) if math.isfinite(per_epoch) else 0

    def step(self, batch: Any) -> None:
        self.done += 1
        if not self.batch_images:
            try:
                self.batch_images = int(len(batch[0]))
            except (TypeError, IndexError):
                self.batch_images = 1

    def seconds_left(self) -> float | None:
        if self.started is None or not self.done or not self.total:
            return None
        per_batch = (time.perf_counter() - self.started) / self.done
        later = self.plan.later_images / max(1, self.batch_images)
        return per_batch * (max(0, self.total - self.done) + later)

    def label(self, trainer: pl.Trainer) -> str:
        epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        epoch = f"epoch {trainer.current_epoch + 1}/{epochs}"
        plan = self.plan
        where = f"member {plan.member}/{plan.members} · " if plan.members > 1 else ""
        if plan.stages > 1:
            return f"{where}stage {plan.stage}/{plan.stages} {plan.name} · {epoch}"
        return f"{where}{plan.name} · {epoch}" if plan.name else f"{where}{epoch}"


class JobProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar with the stage, the epoch of N and an ETA for the whole job."""

    def __init__(self, refresh_rate: int = 1, leave: bool = False) -> None:
        super().__init__(refresh_rate=refresh_rate, leave=leave)
        self.clock = JobClock()

    @property
    def plan(self) -> JobPlan:
        return self.clock.plan

    @plan.setter
    def plan(self, plan: JobPlan) -> None:
        self.clock.plan = plan

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self.clock.start(trainer)

    def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description(self.clock.label(trainer))

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        self.clock.step(batch)
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        left = self.clock.seconds_left()
        if left is not None:
            metrics["job ETA"] = format_seconds(left)
        return metrics
