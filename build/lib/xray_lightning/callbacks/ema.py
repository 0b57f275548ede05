"""Exponential moving average of the weights, used everywhere the model is evaluated.

Lightning's ``EMAWeightAveraging`` validates with the averaged weights and saves them as the
checkpoint's ``state_dict`` (the raw weights go to ``current_model_state``), but when
``trainer.validate``/``trainer.test`` load a checkpoint it restores the *raw* weights, and
testing never swaps the average in. The best checkpoint would then be tested with other weights
than it was selected with, and than ``CascadeModule.from_checkpoints``/``predict`` load. Here a
checkpoint loaded for evaluation keeps its averaged ``state_dict`` for both copies, so validate,
test, the cascade built after training and every loader see the same (averaged) weights.
Loading for ``fit`` (resume) keeps Lightning's behaviour: raw and averaged weights both restored.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EMAWeightAveraging
from pytorch_lightning.trainer.states import TrainerFn


class EMAWeights(EMAWeightAveraging):
    """``EMAWeightAveraging`` whose checkpoints evaluate as they were selected (see module doc)."""

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if trainer.state.fn == TrainerFn.FITTING or self._average_model is None:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
            return
        # pl_module already holds checkpoint["state_dict"] (the average); make the copy equal so
        # the swap around validation is a no-op
        self._average_model.module.load_state_dict(checkpoint["state_dict"])
