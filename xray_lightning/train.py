"""Hydra entry point: ``python -m xray_lightning.train [overrides]``.

compose -> instantiate -> fit -> validate/test the best checkpoint -> metrics.json. ``task=cascade``
trains stage 1, then stage 2 (each in its own sub-folder), then tests the cascade of the two.
"""

from __future__ import annotations

import copy
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.loggers import TensorBoardLogger

from xray_lightning import paths
from xray_lightning.builders import (
    build_datamodule,
    build_module,
    build_trainer,
    needs_resolving,
    resolve_hardware,
)
from xray_lightning.callbacks.hydra_started import HydraStarted
from xray_lightning.callbacks.job_progress import JobPlan, JobProgressBar
from xray_lightning.cli import program_name, version_text
from xray_lightning.cluster import ddp_launch, is_global_zero, job_threads, leave_process_group
from xray_lightning.config_check import check_config
from xray_lightning.ensemble import stage_of
from xray_lightning.errors import XrayLightningError
from xray_lightning.exits import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    run_cli,
)
from xray_lightning.loggers import RunTensorBoardLogger
from xray_lightning.modules.cascade import CascadeModule
from xray_lightning.modules.checkpoints import check_compatible, read_checkpoint
from xray_lightning.runinfo import STAGE_DIRS, RunRecord, finished_ok, read_metrics
from xray_lightning.runlock import RunLock

CONFIG_DIR = str(paths.CONFIG_DIR)
USER_ERRORS = (XrayLightningError, ValueError, FileNotFoundError)
# conf/hydra/launcher/<plugin name>.yaml presets extend the plugins' schemas of the same name on
# purpose (typed, validated); Hydra 1.3 still does that but warns on every run.
warnings.filterwarnings(
    "ignore", message=r"\s*'hydra/launcher/\w+' is validated against ConfigStore"
)


def hydra_info() -> dict[str, Any]:
    """The overrides and group choices of the current Hydra job (empty outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {"overrides": [], "choices": {}}
    hydra_cfg = HydraConfig.get()
    choices = {
        k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra/") and v
    }
    return {"overrides": list(hydra_cfg.overrides.task), "choices": choices}


def base_result(cfg: DictConfig) -> dict[str, Any]:
    return {
        "status": "running",
        "reason": None,
        "task": cfg.task.name,
        "stage": cfg.task.stage,
        "seed": cfg.seed,
        **hydra_info(),
        "params": hparams_of(cfg),
    }


def hparams_of(cfg: DictConfig) -> dict[str, Any]:
    """Flat parameters that identify a run in tables and TensorBoard's HPARAMS tab."""
    params: dict[str, Any] = {
        "seed": cfg.seed,
        "max_epochs": cfg.trainer.get("max_epochs"),
        "batch_size": cfg.data.batch_size,
        "lr": cfg.optimizer.get("lr"),
        "weight_decay": cfg.optimizer.get("weight_decay"),
        "optimizer": cfg.optimizer._target_.rsplit(".", 1)[-1],
        "loss": cfg.loss._target_.rsplit(".", 1)[-1],
        "net": cfg.net._target_.rsplit(".", 1)[-1],
        "init": cfg.init.get("scheme", "default"),
        "scheduler": cfg.scheduler._target_.rsplit(".", 1)[-1] if cfg.get("scheduler") else "none",
    }
    net: dict[str, Any] = OmegaConf.to_container(cfg.net, resolve=True)  # type: ignore[assignment]
    for key, value in net.items():
        if key != "_target_":
            params[f"net.{key}"] = str(value) if isinstance(value, (list, dict)) else value
    return params


def fit_stage(
    cfg: DictConfig,
    hardware: dict[str, Any] | None = None,
    plan: JobPlan | None = None,
    later_images: Callable[[dict[str, Any]], int] | None = None,
) -> tuple[dict[str, Any], Any]:
    """Train one classifier in ``cfg.paths.output_dir``; return (result, module or None).

    ``plan`` says where this fit sits in the job, for the progress bar; ``later_images`` turns
    this stage's data summary into the training images of the stages after it (its ETA).
    """
    run_dir = Path(cfg.paths.output_dir)
    result = base_result(cfg)
    result["run_dir"] = str(run_dir)
    module = trainer = None
    with RunRecord(run_dir, result) as record:
        if hardware is None or needs_resolving(cfg):
            hardware = resolve_hardware(cfg)
        result["hardware"] = hardware
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        datamodule = build_datamodule(cfg)
        result["data"] = datamodule.summary()
        module = build_module(cfg, datamodule)
        if cfg.get("ckpt_path"):
            check_compatible(cfg.ckpt_path, module)
        trainer = record.trainer = build_trainer(cfg)
        plan = plan or JobPlan(name=str(cfg.task.stage))
        if later_images is not None:
            plan.later_images = later_images(result["data"])
        for callback in trainer.callbacks:
            if isinstance(callback, JobProgressBar):
                callback.plan = plan
        record.began = True  # from here a failure replaces an earlier record of this run dir
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        if trainer.interrupted:
            raise KeyboardInterrupt
        result.update(evaluate_best(cfg, trainer, module, datamodule))
        result["status"] = "ok"
    if trainer is not None and is_global_zero():
        log_final_hparams(trainer, result)
    return result, module


def evaluate_best(cfg: DictConfig, trainer: pl.Trainer, module: Any, datamodule: Any) -> dict:
    """Validate (and test) the best checkpoint by the monitored val metric."""
    checkpoint_cb = trainer.checkpoint_callback
    best = getattr(checkpoint_cb, "best_model_path", "") or None
    info: dict[str, Any] = {
        "best_checkpoint": best,
        "last_checkpoint": getattr(checkpoint_cb, "last_model_path", "") or None,
        "monitor": getattr(checkpoint_cb, "monitor", None),
        "epochs_trained": trainer.current_epoch,
        "best_epoch": read_checkpoint(best)["epoch"] if best else None,
    }
    metrics: dict[str, Any] = {}
    for logged in trainer.validate(module, datamodule=datamodule, ckpt_path=best, verbose=False):
        metrics.update({k: v for k, v in logged.items() if k.startswith("val/")})
    confusion = {"val": module.confusion.get("val")}
    if cfg.get("test_after_fit", True):
        for logged in trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False):
            metrics.update({k: v for k, v in logged.items() if k.startswith("test/")})
        confusion["test"] = module.confusion.get("test")
    info["metrics"] = metrics
    info["confusion"] = confusion
    return info


def log_final_hparams(trainer: pl.Trainer, result: dict[str, Any]) -> None:
    """Fill TensorBoard's HPARAMS tab: the run's parameters beside its final metrics (the last
    points of the curves of the same tags, see ``loggers``)."""
    metrics = {k: float(v) for k, v in result.get("metrics", {}).items()}
    for logger in trainer.loggers:
        if isinstance(logger, RunTensorBoardLogger):
            logger.log_run_summary(result["params"], metrics)
            logger.finalize("success")
        elif isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(result["params"], {f"final/{k}": v for k, v in metrics.items()})
            logger.finalize("success")


def stage_config(cfg: DictConfig, stage: str, run_dir: Path) -> DictConfig:
    """The config of one cascade stage: its labels, its sub-folder, its overrides."""
    stage_cfg = copy.deepcopy(cfg)
    with open_dict(stage_cfg):
        stage_cfg.task.stage = stage
        stage_cfg.task.name = stage
        stage_cfg.paths.output_dir = str(run_dir / STAGE_DIRS[stage])
    overrides = (cfg.task.get("stage_overrides") or {}).get(stage)
    if overrides:
        stage_cfg = OmegaConf.merge(stage_cfg, overrides)
    return stage_cfg


def member_config(cfg: DictConfig, member: int, members: int) -> tuple[DictConfig, Path]:
    """Member ``member`` of an ensemble run: seed ``seed + member``, folder ``member<k>``
    (a single cascade, ``members`` 1, keeps the config and the run dir as they are)."""
    run_dir = Path(cfg.paths.output_dir)
    if members == 1:
        return cfg, run_dir
    member_cfg = copy.deepcopy(cfg)
    with open_dict(member_cfg):
        member_cfg.seed = int(cfg.seed) + member
    return member_cfg, run_dir / f"member{member}"


def train_cascade(cfg: DictConfig) -> dict[str, Any]:
    """Stage 1, stage 2, then the cascade's 3-class evaluation, all under one run dir.

    ``task.members`` K > 1 trains K cascades (seeds ``seed``..``seed+K-1``, in ``member<k>/``)
    and evaluates their ensemble: per stage, the members' probabilities averaged.
    """
    run_dir = Path(cfg.paths.output_dir)
    result = base_result(cfg)
    result.update(run_dir=str(run_dir), stages={})
    stages = list(cfg.task.stages)
    members = int(cfg.task.get("members") or 1)
    fits = []  # (member, stage index, that fit's config), in training order
    for member in range(members):
        member_cfg, member_dir = member_config(cfg, member, members)
        fits += [
            (member, index, stage_config(member_cfg, stage, member_dir))
            for index, stage in enumerate(stages)
        ]
    trained: dict[str, list[Any]] = {stage: [] for stage in stages}
    counts: dict[str, int] = {}
    with RunRecord(run_dir, result) as record:
        result["hardware"] = hardware = resolve_hardware(cfg)  # once for every fit
        for position, (member, index, stage_cfg) in enumerate(fits):
            stage = stages[index]
            plan = JobPlan(
                stage=index + 1,
                stages=len(stages),
                name=stage,
                member=member + 1,
                members=members,
            )
            later = partial(later_fit_images, counts, [f[2] for f in fits[position + 1 :]])
            stage_result, module = fit_stage(stage_cfg, hardware, plan, later)
            summary = summary_of(stage_result)
            if members == 1:
                result["stages"][stage] = summary
            else:
                entry = result["stages"].setdefault(stage, {**summary, "members": []})
                entry["members"].append(summary | {"seed": int(stage_cfg.seed)})
            record.began = True  # a stage ran: this record replaces an earlier one
            if stage_result["status"] != "ok":
                where = f"member {member}, {stage}" if members > 1 else stage
                result.update(status="failed", reason=f"{where}: {stage_result['reason']}")
                return result
            trained[stage].append(module)
        leave_process_group()  # DDP ends with training: rank zero evaluates the cascade, unsharded
        if is_global_zero():
            result.update(
                evaluate_cascade(cfg, trained["normal_vs_infected"], trained["covid_vs_noncovid"])
            )
        result["status"] = "ok"
    return result


def later_fit_images(
    counts: dict[str, int], later: list[DictConfig], summary: dict[str, Any]
) -> int:
    """Training images x epochs of the fits after this one (the ETA of the whole job).

    ``counts`` (train images per stage) is filled from the first stage-1 data summary: stage 2
    trains on the infected images of the same train split.
    """
    train = summary.get("train", {})
    if "normal" in train and not counts:
        counts["normal_vs_infected"] = sum(train.values())
        counts["covid_vs_noncovid"] = sum(n for name, n in train.items() if name != "normal")
    elif not counts:  # a stage-2-only job: its own images are all it knows
        counts["covid_vs_noncovid"] = sum(train.values())
    images = 0
    for stage_cfg in later:
        epochs = stage_cfg.trainer.get("max_epochs") or 1
        images += counts.get(str(stage_cfg.task.stage), 0) * max(1, int(epochs))
    return images


def summary_of(stage_result: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "status",
        "reason",
        "run_dir",
        "best_checkpoint",
        "best_epoch",
        "metrics",
        "wall_time_s",
    )
    return {key: stage_result.get(key) for key in keys}


def evaluate_cascade(cfg: DictConfig, stage1: list[Any], stage2: list[Any]) -> dict[str, Any]:
    """3-class metrics of the cascade on val, test and showcase, at each operating point.

    accuracy-first is the configured ``task.cascade.t1``/``t2``. With ``task.cascade.target_recall``
    set, recall-first thresholds are chosen on val (see ``xray_lightning.operating_point``) and
    become the run's thresholds. Both points' metrics and confusions stay side by side under
    ``operating_points``; ``operating_point`` names the one reported as ``metrics``. The stages
    run once per split in float32 on the CPU, as ``predict`` and ``from_checkpoints`` do (not
    under the trainer's bf16 autocast), so these numbers are what a loaded cascade reproduces.
    """
    from xray_lightning.operating_point import operating_points
    from xray_lightning.runs import split_predictions

    splits = ("val", "test", "showcase")
    datamodule = build_datamodule(cfg, stage="three_class")
    configured = (float(cfg.task.cascade.t1), float(cfg.task.cascade.t2))
    first, second = (stage_of([m.cpu().float() for m in members]) for members in (stage1, stage2))
    cascade = CascadeModule(first, second, *configured).eval()
    probs = {split: split_predictions(cascade, datamodule, split) for split in splits}
    probs = {split: p for split, p in probs.items() if len(p.labels)}
    points = operating_points(probs, configured, cfg.task.cascade.get("target_recall"))
    chosen = "recall_first" if "recall_first" in points else "accuracy_first"
    return {
        "thresholds": {"t1": points[chosen]["t1"], "t2": points[chosen]["t2"]},
        "metrics": points[chosen]["metrics"],
        "confusion": points[chosen]["confusion"],
        "class_names": list(cascade.class_names),
        "operating_point": chosen,
        "operating_points": points,
    }


def run(cfg: DictConfig) -> dict[str, Any]:
    """Run the configured task and return what its metrics.json holds (one writer per run dir)."""
    check_config(cfg)  # every bad data/net/task key, once, before anything is built
    with RunLock(cfg.paths.output_dir):
        if cfg.task.name == "cascade":
            return train_cascade(cfg)
        return fit_stage(cfg)[0]


def print_outcome(result: dict[str, Any]) -> None:
    """Where things are and the headline test numbers."""
    metrics = result.get("metrics", {})
    lines = [f"status: {result['status']}" + (f" ({result['reason']})" if result["reason"] else "")]
    wanted = ("test/acc", "test/f1_macro", "test/precision", "test/recall", "test/auroc")
    lines += [f"  {key}: {metrics[key]:.4f}" for key in wanted if key in metrics]
    for stage, info in result.get("stages", {}).items():
        stage_metrics = info.get("metrics") or {}
        numbers = ", ".join(
            f"{k.split('/')[-1]} {stage_metrics[k]:.4f}"
            for k in ("test/acc", "test/precision", "test/recall")
            if k in stage_metrics
        )
        lines.append(f"  {stage}: {numbers}  best: {info.get('best_checkpoint')}")
    run_dir = Path(result["run_dir"])
    lines.append(f"run dir:     {run_dir}")
    lines.append(f"metrics:     {run_dir / 'metrics.json'}")
    lines.append(f"tensorboard: tensorboard --logdir {run_dir}")
    print("\n".join(lines))


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler's stop, ``kill``) ends the run as Ctrl-C does: recorded, exit 130."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (e.g. a launcher's worker thread)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    output_dir = Path(cfg.paths.output_dir)
    if multirun and cfg.get("resume_sweep") and finished_ok(output_dir):
        print(f"skipped: {output_dir} finished earlier (resume_sweep=true)")
        optimized = cfg.get("optimized_metric")
        return read_metrics(output_dir).get("metrics", {}).get(optimized) if optimized else None
    job_threads()  # parallel sweep jobs share the cores
    try:
        with ddp_launch(), sigterm_as_interrupt():  # DDP ranks re-run this job, in its run dir
            result = run(cfg)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        if multirun:
            raise
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        print(
            "interrupted: the run is recorded as interrupted; resume from its last.ckpt",
            file=sys.stderr,
        )
        sys.exit(EXIT_INTERRUPTED)
    if is_global_zero():
        print_outcome(result)
    if result["status"] != "ok" and not multirun:
        sys.exit(EXIT_FAILED)
    optimized = cfg.get("optimized_metric")
    return result.get("metrics", {}).get(optimized) if optimized else None


def cli() -> int:
    """``python -m xray_lightning.train``: Hydra's own errors (a bad override or config value,
    raised before the task starts) exit 2 like every other usage error, not Hydra's 1.
    ``--version`` prints this package's version (Hydra's own flag would print Hydra's)."""
    if "--version" in sys.argv[1:]:
        print(version_text(program_name("xray_lightning.train")))
        return EXIT_OK
    try:
        main()
    except SystemExit as exit_:
        if exit_.code == 1 and not HydraStarted.started:
            raise SystemExit(EXIT_USAGE) from None
        raise
    return EXIT_OK


def entry_point() -> None:
    """The installed ``xray-train`` command."""
    run_cli(cli)


if __name__ == "__main__":
    entry_point()
