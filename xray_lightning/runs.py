"""The one reader of finished runs: checkpoints, thresholds, data settings, latest run, predictions.

``predict``, ``evaluate`` and ``report`` are siblings that import this module, never each other.
A cascade to use is a :class:`CascadeSource`: a cascade run dir (its metrics.json), two stage
checkpoints, or a shipped folder (``experiments/best``: two slim checkpoints and the
``thresholds.json`` written by ``evaluate --export``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from xray_lightning import paths
from xray_lightning.data.cache import default_cache_dir
from xray_lightning.data.layout import default_root
from xray_lightning.decision import NORMAL, Probabilities, staged_proba
from xray_lightning.errors import CheckpointError, XrayLightningError
from xray_lightning.runinfo import METRICS_FILE, STAGE_DIRS, read_metrics

SHIPPED = paths.SHIPPED
MODEL_ENV = "XRAY_MODEL"  # a folder like experiments/best: the model used when none is named
THRESHOLDS_FILE = "thresholds.json"
STAGE_FILES = ("stage1.ckpt", "stage2.ckpt")
# Keys of thresholds.json's "data" section: what decides which images are val and test.
SPLIT_KEYS = ("layout", "val_fraction", "split_seed", "expect_size", "expect_mode")
# Keys of a checkpoint's preprocess spec that are DataModule arguments.
SPEC_KEYS = ("image_size", "expect_size", "expect_mode", "layout", "preprocessing", "mean", "std")


class RunDirError(XrayLightningError):
    """A run dir is not a finished cascade run (no metrics.json, wrong task, failed, no ckpts)."""


@dataclass
class CascadeSource:
    """Where a cascade comes from: its two checkpoints, thresholds and saved data settings."""

    stage1: Path
    stage2: Path
    thresholds: dict[str, float] = field(default_factory=dict)
    thresholds_from: str = "checkpoints"
    split_settings: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    calibration: dict[str, Any] = field(default_factory=dict)  # thresholds.json's, fitted on val
    folder: Path | None = None  # the model folder it came from (shipped, --model, $XRAY_MODEL)
    ensemble1: list[Path] = field(default_factory=list)  # all stage-1 members, when several
    ensemble2: list[Path] = field(default_factory=list)

    @property
    def stage1_checkpoints(self) -> list[Path]:
        return self.ensemble1 or [self.stage1]

    @property
    def stage2_checkpoints(self) -> list[Path]:
        return self.ensemble2 or [self.stage2]

    @property
    def is_ensemble(self) -> bool:
        return len(self.stage1_checkpoints) > 1 or len(self.stage2_checkpoints) > 1


def cascade_members(run_dir: str | Path) -> tuple[list[Path], list[Path], dict[str, float]]:
    """(stage-1 checkpoints, stage-2 checkpoints, {t1, t2}) of a finished cascade run dir: one
    checkpoint per stage, or one per member of an ensemble run (``task.members`` > 1).

    The checkpoints named in metrics.json are used; if the run dir was moved, the same files
    are looked for under ``[member<k>/]stage1/checkpoints`` and ``.../stage2/checkpoints``.
    """
    run_dir = Path(run_dir)
    if not (run_dir / METRICS_FILE).is_file():
        raise RunDirError(f"{run_dir} is not a run dir: no {METRICS_FILE} in it")
    result = read_metrics(run_dir)
    if result.get("task") != "cascade":
        raise RunDirError(
            f"{run_dir} is a {result.get('task')!r} run; --run needs a cascade run dir "
            "(python -m xray_lightning.train task=cascade), or pass --stage1 and --stage2"
        )
    if result.get("status") != "ok":
        raise RunDirError(f"{run_dir}: the run did not finish ({result.get('reason')})")
    found: list[list[Path]] = []
    for stage, folder in STAGE_DIRS.items():
        summary = result.get("stages", {}).get(stage) or {}
        members = summary.get("members") or [summary]
        paths = []
        for index, member in enumerate(members):
            named = member.get("best_checkpoint")
            sub = run_dir / (f"member{index}" if len(members) > 1 else "") / folder
            candidates = [Path(named), sub / "checkpoints" / Path(named).name] if named else []
            path = next((p for p in candidates if p.is_file()), None)
            if path is None:
                raise RunDirError(
                    f"{run_dir}: the {stage} checkpoint is missing (tried {candidates})"
                )
            paths.append(path)
        found.append(paths)
    thresholds = {k: float(v) for k, v in (result.get("thresholds") or {}).items()}
    return found[0], found[1], thresholds


def cascade_checkpoints(run_dir: str | Path) -> tuple[Path, Path, dict[str, float]]:
    """(stage-1 ckpt, stage-2 ckpt, {t1, t2}) of a finished cascade run dir (an ensemble run's
    first member; ``cascade_members`` gives them all)."""
    first, second, thresholds = cascade_members(run_dir)
    return first[0], second[0], thresholds


def folder_members(folder: Path, saved: dict[str, Any]) -> tuple[list[Path], list[Path]]:
    """The member checkpoints a model folder's thresholds.json lists under ``members`` (an
    ensemble written by ``evaluate --export``); ([], []) for a single cascade. Names are plain
    file names inside the folder: anything else is refused."""
    members = saved.get("members")
    if not members:
        return [], []
    out: list[list[Path]] = []
    for key in ("stage1", "stage2"):
        names = members.get(key) if isinstance(members, dict) else None
        if not isinstance(names, list) or not names:
            raise CheckpointError(
                f"{folder / THRESHOLDS_FILE}: members.{key} must be a list of checkpoint names"
            )
        paths = []
        for name in names:
            if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
                raise CheckpointError(
                    f"{folder / THRESHOLDS_FILE}: members.{key} holds {name!r}; expected a file "
                    "name inside the model folder"
                )
            if not (folder / name).is_file():
                raise CheckpointError(f"checkpoint not found: {folder / name} (members.{key})")
            paths.append(folder / name)
        out.append(paths)
    return out[0], out[1]


def latest_run(log_dir: str | Path | None = None, task: str = "cascade") -> Path:
    """The newest ``<log_dir>/<task>/runs/*`` holding a metrics.json (log_dir: $XRAY_LOG_DIR
    or ``logs``)."""
    log_dir = Path(log_dir or os.environ.get("XRAY_LOG_DIR", "logs"))
    runs = sorted(p.parent for p in (log_dir / task / "runs").glob("*/metrics.json"))
    if not runs:
        raise RunDirError(
            f"no {task} run under {log_dir / task / 'runs'}: train one with `make train`, "
            "or pass RUN=<run dir>"
        )
    return runs[-1]


def read_thresholds(folder: Path) -> dict[str, Any]:
    """``folder/thresholds.json`` (written by ``evaluate --export``), or {} when there is none."""
    path = folder / THRESHOLDS_FILE
    if not path.is_file():
        return {}
    try:
        saved = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path} is not valid JSON ({error})") from None
    for key in ("t1", "t2"):
        value = saved.get(key) if isinstance(saved, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
            raise CheckpointError(f"{path}: {key!r} must be a number in (0, 1), got {value!r}")
    return saved


def cascade_source(
    run: Path | None = None,
    stage1: Path | Sequence[Path] | None = None,
    stage2: Path | Sequence[Path] | None = None,
    t1: float | None = None,
    t2: float | None = None,
    model: Path | None = None,
) -> CascadeSource:
    """The cascade named by a run dir, or two checkpoints, else the shipped one; ``t1``/``t2``
    (the command line) win over the thresholds found with it. ``model``: a model folder (two stage
    checkpoints and thresholds.json, as ``evaluate --export`` writes), else $XRAY_MODEL, else the
    shipped one (``SHIPPED``, read when called)."""
    members1 = [Path(p) for p in stage1] if isinstance(stage1, list | tuple) else []
    members2 = [Path(p) for p in stage2] if isinstance(stage2, list | tuple) else []
    stage1 = members1[0] if members1 else stage1
    stage2 = members2[0] if members2 else stage2
    env = os.environ.get(MODEL_ENV)
    shipped = Path(model) if model is not None else Path(env) if env else SHIPPED
    named = "--model" if model is not None else f"${MODEL_ENV}" if env else None
    if named and stage1 is None and run is None and not shipped.is_dir():
        raise CheckpointError(f"model folder not found: {shipped} ({named})")
    if run is not None:
        members1, members2, thresholds = cascade_members(run)
        source = CascadeSource(
            members1[0], members2[0], thresholds, "metrics.json", run_dir=Path(run)
        )
    else:
        first = Path(stage1) if stage1 is not None else shipped / STAGE_FILES[0]
        second = Path(stage2) if stage2 is not None else shipped / STAGE_FILES[1]
        for path in (first, second):
            if not path.is_file():
                hint = (
                    " (ship one with: python -m xray_lightning.evaluate --export RUN_DIR)"
                    if stage1 is None
                    else ""
                )
                raise CheckpointError(f"checkpoint not found: {path}{hint}")
        saved = read_thresholds(first.parent)
        source = CascadeSource(
            first,
            second,
            {k: float(saved[k]) for k in ("t1", "t2") if k in saved},
            THRESHOLDS_FILE if saved else "checkpoints",
            {k: v for k, v in (saved.get("data") or {}).items() if k in SPLIT_KEYS},
            calibration=dict(saved.get("calibration") or {}),
            folder=shipped if stage1 is None else None,
        )
        if stage1 is None:
            members1, members2 = folder_members(shipped, saved)
    for key, value in (("t1", t1), ("t2", t2)):
        if value is not None:
            source.thresholds[key] = value
            source.thresholds_from = "command line"
    for path in [*members1[1:], *members2[1:]]:
        if not path.is_file():
            raise CheckpointError(f"checkpoint not found: {path}")
    source.ensemble1 = members1 if len(members1) > 1 else []
    source.ensemble2 = members2 if len(members2) > 1 else []
    return source


def run_data_settings(run_dir: Path) -> dict[str, Any] | None:
    """The ``data`` section a run trained with (its ``.hydra/config.yaml``), or None."""
    from omegaconf import OmegaConf

    hydra_config = Path(run_dir) / ".hydra" / "config.yaml"
    if not hydra_config.is_file():
        return None
    cfg = OmegaConf.load(hydra_config)
    OmegaConf.set_struct(cfg, False)
    cfg.data.stage = "three_class"
    cfg.data.seed = 0  # no shuffling or augmentation is read
    settings: dict[str, Any] = OmegaConf.to_container(cfg.data, resolve=True)  # type: ignore[assignment]
    settings.pop("_target_", None)
    return settings


def data_settings(
    source: CascadeSource, preprocess: dict[str, Any] | None, data_root: str | Path | None = None
) -> dict[str, Any]:
    """XrayDataModule arguments to re-load a cascade's data, 3-class.

    The run's own data config when it has one, else the checkpoints' preprocess spec plus the
    split settings saved by ``--export``. Either way the images are normalised with the
    checkpoints' own train-split mean/std (passed as arguments), as ``predict`` normalises new
    files. The root: ``data_root``, else the run's, else the dataset finder's default.
    """
    spec = dict(preprocess or {})
    if "image_size" not in spec:
        raise CheckpointError("the stage checkpoints carry no preprocess spec (hparams.preprocess)")
    settings = run_data_settings(source.run_dir) if source.run_dir is not None else None
    if settings is None:
        settings = {k: spec[k] for k in SPEC_KEYS if k in spec} | source.split_settings
        settings |= {"stage": "three_class", "root": default_root()}
        settings["cache_dir"] = default_cache_dir()  # the training runs' cache
    if data_root is not None:
        settings["root"] = str(data_root)
    if spec.get("mean") is not None:
        settings |= {"mean": spec["mean"], "std": spec["std"]}
    return settings


@dataclass(frozen=True)
class SplitPredictions(Probabilities):
    """Both stages' outputs on one split of the 3-class data, in file order, the cascade's labels
    at its thresholds, and (when asked for) the images and their files."""

    predicted: torch.Tensor | None = None
    raw: torch.Tensor | None = None  # uint8 [N, H, W] as the model sees them, before normalising
    paths: list[Path] = field(default_factory=list)


@torch.no_grad()
def split_predictions(
    cascade: Any,
    datamodule: Any,
    split: str,
    keep_images: bool = False,
    stage2_where_needed: bool = False,
    on_batch: Callable[[int], Any] | None = None,
) -> SplitPredictions:
    """``cascade.predict_proba`` over one split of a 3-class DataModule, in file order.

    ``stage2_where_needed``: stage 2 runs only on the images the metrics read it for (called
    infected by stage 1, or truly infected); p_covid is NaN for the others (true normals called
    normal), which no cascade metric reads. A third less compute for ``evaluate``.
    ``on_batch`` is called with each batch's number of images (a progress bar's ``update``).
    """
    p_inf, p_cov, spreads, labels, raws = [], [], [], [], []
    device = next(cascade.parameters()).device
    for batch in datamodule.split_dataloader(split):
        images, y = datamodule.transform_batch(batch, train=False)
        images = images.to(device)
        # stage 2 where stage 1 says infected, and (when asked) on the truly infected; else all
        truly_infected = y.to(device) > NORMAL
        also = truly_infected if stage2_where_needed else torch.ones_like(truly_infected)
        a, b, spread = staged_proba(cascade.stage1, cascade.stage2, images, cascade.t1, also=also)
        spreads.append(spread.cpu())
        p_inf.append(a.cpu())
        p_cov.append(b.cpu())
        labels.append(y.cpu())
        if keep_images:
            raws.append(batch[0].reshape(len(y), *batch[0].shape[-2:]))
        if on_batch is not None:
            on_batch(len(y))
    p_infected, p_covid = torch.cat(p_inf), torch.cat(p_cov)
    return SplitPredictions(
        p_infected,
        p_covid,
        torch.cat(labels),
        spread=torch.cat(spreads),
        predicted=cascade.decide(p_infected, p_covid),
        raw=torch.cat(raws) if keep_images else None,
        paths=datamodule.split_paths(split) if keep_images else [],
    )
