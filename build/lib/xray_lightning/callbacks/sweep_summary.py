"""Hydra callback (not a Lightning one): summary.csv/summary.md in the sweep dir of a multirun.

Enabled in conf/hydra/default.yaml under ``hydra.callbacks``. The summary is rebuilt from the jobs'
metrics.json files (xray_lightning.tables) after each job, so a sweep stopped half-way still has a
table of what ran, once more when the multirun ends, and at exit if the launcher itself failed.
Every planned job is listed: ok, failed with its reason, or not run.
"""

from __future__ import annotations

import atexit
import logging
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from xray_lightning.tables import summarise_sweeps, write_summary

log = logging.getLogger(__name__)


class SweepSummary(Callback):
    """Writes ``summary.csv`` and ``summary.md`` into ``hydra.sweep.dir`` of a multirun."""

    def __init__(self, after_each_job: bool = True) -> None:
        self.after_each_job = after_each_job

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # also when the launcher dies (a joblib worker killed): the summary is written at exit
        atexit.register(self.write, str(config.hydra.sweep.dir), False)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if self.after_each_job and config.hydra.mode == RunMode.MULTIRUN:
            self.write(config.hydra.sweep.dir, announce=False)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.write(config.hydra.sweep.dir, announce=True)

    @staticmethod
    def write(sweep_dir: str | Path, announce: bool = True) -> Path | None:
        """Summarise ``sweep_dir``; a summary that cannot be made is a warning, never a crash."""
        try:
            summary = summarise_sweeps([sweep_dir])
            _, md_path = write_summary(summary, sweep_dir)
        except Exception as error:  # the jobs' results matter more than their table
            log.warning("sweep summary not written in %s: %s", sweep_dir, error)
            return None
        if announce:
            log.info(
                "sweep summary: %s (%d configurations, %d jobs, %d failed)",
                md_path,
                len(summary.rows),
                summary.n_jobs,
                summary.n_failed,
            )
        return md_path
