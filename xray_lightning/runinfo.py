"""A run's metrics.json: written atomically, read by everything downstream."""

from __future__ import annotations

import json
import math
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
