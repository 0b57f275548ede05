"""TensorBoard as a run's dashboard: curves first, no single-point cards.

Lightning's TensorBoardLogger adds an ``epoch`` scalar to every logged step and, given final
metrics, writes each as a one-point scalar card; both sit alphabetically above the per-epoch
``test/``, ``train/`` and ``val/`` curves. Here ``epoch`` is dropped (the x-axis is the step; the
epoch is in the progress line and metrics.json), and the HPARAMS tab's metric columns point at the
curves' own tags (``val/acc``, ``test/acc``, ...): their last points are the best checkpoint's
final validation and test, so no ``final/*`` copies are written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only


def _plain(value: Any) -> int | float | str | bool:
    if isinstance(value, bool | int | float | str):
        return value
    return "none" if value is None else str(value)


class RunTensorBoardLogger(TensorBoardLogger):
    """TensorBoardLogger without the ``epoch`` scalar, with :meth:`log_run_summary`."""

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        kept = {k: v for k, v in metrics.items() if k != "epoch"}
        if kept:
            super().log_metrics(kept, step)

    @rank_zero_only
    def log_run_summary(self, params: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
        """The HPARAMS tab's row: ``params`` beside ``metrics``, whose tags are already curves."""
        from torch.utils.tensorboard.summary import hparams

        flat = {str(k): _plain(v) for k, v in params.items()}
        writer = self.experiment._get_file_writer()  # as Lightning's own log_hyperparams does
        for summary in hparams(flat, {k: float(v) for k, v in metrics.items()}):
            writer.add_summary(summary)
        writer.flush()
