"""A run's metrics.json: written atomically (``RunRecord``: whatever the run's end), read by
everything downstream."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from xray_lightning.durable import write_text_atomic

METRICS_FILE = "metrics.json"
# where a cascade run keeps each stage's own run dir
STAGE_DIRS = {"normal_vs_infected": "stage1", "covid_vs_noncovid": "stage2"}


def to_jsonable(value: Any) -> Any:
    """Tensors and numbers to plain floats/ints (NaN/inf as None), containers recursively."""
    if isinstance(value, torch.Tensor):
        value = value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_metrics(run_dir: str | Path, result: dict[str, Any]) -> Path:
    """Write ``run_dir/metrics.json`` atomically and durably (``xray_lightning.durable``)."""
    path = Path(run_dir) / METRICS_FILE
    return write_text_atomic(path, json.dumps(to_jsonable(result), indent=2) + "\n")


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """Read a run's metrics.json."""
    return json.loads((Path(run_dir) / METRICS_FILE).read_text())


def failure(error: BaseException, trainer: Any = None) -> dict[str, Any]:
    """The status and reason a run that raised records: ``interrupted`` for Ctrl-C/SIGTERM."""
    interrupted = isinstance(error, KeyboardInterrupt) or (
        isinstance(error, SystemExit) and trainer is not None and trainer.interrupted
    )
    if interrupted:
        return {
            "status": "interrupted",
            "reason": "interrupted (SIGINT/SIGTERM); resume from last.ckpt",
        }
    return {"status": "failed", "reason": f"{type(error).__name__}: {error}"}


def finished_ok(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` already holds a finished run's metrics.json (status ok)."""
    try:
        return read_metrics(run_dir).get("status") == "ok"
    except (OSError, ValueError):
        return False


class RunRecord:
    """``with RunRecord(run_dir, result) as record:`` writes ``metrics.json`` however the block
    ends: ``ok`` as the block set it, ``failed`` with the reason, or ``interrupted``.

    A diverged run (``NonFiniteLossError``) is a result, not a crash: recorded as failed and not
    re-raised. Until ``record.began`` is set, a failure never replaces a finished run's record
    (a mistyped resume must not overwrite it). ``record.trainer`` tells Lightning's Ctrl-C
    (a ``SystemExit``) from other exits; it is re-raised as ``KeyboardInterrupt``. Under DDP every
    rank runs the block and rank zero writes.
    """

    def __init__(self, run_dir: str | Path, result: dict[str, Any]) -> None:
        self.run_dir = Path(run_dir)
        self.result = result
        self.began = False
        self.trainer: Any = None
        self._started = 0.0

    def __enter__(self) -> RunRecord:
        self._started = time.perf_counter()
        return self

    def __exit__(self, kind: Any, error: BaseException | None, traceback: Any) -> bool:
        from xray_lightning.cluster import is_global_zero
        from xray_lightning.errors import NonFiniteLossError

        diverged = isinstance(error, NonFiniteLossError)
        if diverged:
            self.result.update(status="failed", reason=str(error))
        elif error is not None and self.result.get("status") == "running":
            self.result.update(failure(error, self.trainer))
        self.result["wall_time_s"] = round(time.perf_counter() - self._started, 2)
        if is_global_zero() and (self.began or not finished_ok(self.run_dir)):
            write_metrics(self.run_dir, self.result)
        interrupted = self.result.get("status") == "interrupted"
        if error is not None and interrupted and not isinstance(error, KeyboardInterrupt):
            raise KeyboardInterrupt from error  # Lightning turns Ctrl-C into SystemExit(1)
        return diverged
