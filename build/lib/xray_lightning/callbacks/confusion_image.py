"""The confusion matrix of each evaluated split as a TensorBoard image, once per epoch.

The LightningModule only computes the matrices (``module.new_confusion``); drawing them is this
callback's job, so training code never imports matplotlib and a run without TensorBoard draws
nothing.
"""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.loggers import TensorBoardLogger


class ConfusionImage(pl.Callback):
    """Adds ``<split>/confusion_matrix`` figures to every TensorBoard logger after validation
    and test (not during the sanity check)."""

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._draw(trainer, pl_module)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._draw(trainer, pl_module)

    def _draw(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        matrices = getattr(pl_module, "new_confusion", None)
        if not matrices:
            return
        drawn = dict(matrices)
        matrices.clear()
        loggers = [log for log in trainer.loggers if isinstance(log, TensorBoardLogger)]
        if trainer.sanity_checking or not loggers or not trainer.is_global_zero:
            return
        from xray_lightning.plots.confusion import confusion_figure

        names = list(getattr(pl_module, "class_names", ()))
        for split, matrix in drawn.items():
            title = f"{split} (epoch {trainer.current_epoch})"
            fig = confusion_figure(matrix.numpy(), names, title=title)
            for logger in loggers:
                logger.experiment.add_figure(
                    f"{split}/confusion_matrix", fig, trainer.global_step, close=False
                )
