"""Re-measure a trained cascade on the official test split (and val), or export one for shipping.

    python -m xray_lightning.evaluate [--stage1 CKPT --stage2 CKPT | --run RUN_DIR]
        [--t1 T] [--t2 T] [--data-root DIR] [--json]
    python -m xray_lightning.evaluate --export RUN_DIR [--to experiments/best] [--force]

Without --stage1/--stage2/--run the shipped cascade is evaluated: ``experiments/best/stage1.ckpt``
and ``stage2.ckpt`` with the thresholds in ``experiments/best/thresholds.json``. The cascade is
rebuilt with ``CascadeModule.from_checkpoints`` and run in float32 on the CPU over the data's val
and test splits, normalised with the checkpoints' own preprocess spec (as ``predict`` does);
the metrics are ``operating_point.cascade_metrics``, the ones a training run writes.

``--export`` writes slim weights-only copies of a cascade run's two best checkpoints and a
``thresholds.json`` (the run's thresholds, its data split settings and its metrics) into ``--to``.

Exit status: 0 done, 2 bad checkpoint, run dir, data or arguments.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xray_lightning.errors import CheckpointError, XrayLightningError
from xray_lightning.exits import run_cli

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "experiments" / "best"
THRESHOLDS_FILE = "thresholds.json"
STAGE_FILES = ("stage1.ckpt", "stage2.ckpt")
SPLITS = ("test", "val")
EXIT_OK, EXIT_USAGE = 0, 2
# Keys of thresholds.json's "data" section: what decides which images are val and test.
DATA_KEYS = ("layout", "val_fraction", "split_seed", "expect_size", "expect_mode")


class ExportError(XrayLightningError):
    """An export would overwrite a shipped cascade, or its target is not a folder."""


def read_thresholds(folder: Path) -> dict[str, Any]:
    """``folder/thresholds.json`` (written by ``--export``), or {} when there is none."""
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


def resolve_source(args: argparse.Namespace) -> dict[str, Any]:
    """Checkpoints, thresholds (and where they came from) and data settings to evaluate."""
    from xray_lightning.predict import cascade_checkpoints

    if args.run is not None:
        stage1, stage2, thresholds = cascade_checkpoints(args.run)
        source = {"stage1": stage1, "stage2": stage2, "thresholds_from": "metrics.json"}
        source |= {"thresholds": thresholds, "data": {}}
    else:
        stage1 = args.stage1 or SHIPPED / STAGE_FILES[0]
        stage2 = args.stage2 or SHIPPED / STAGE_FILES[1]
        for path in (stage1, stage2):
            if not Path(path).is_file():
                hint = (
                    " (ship one with: python -m xray_lightning.evaluate --export RUN_DIR)"
                    if args.stage1 is None
                    else ""
                )
                raise CheckpointError(f"checkpoint not found: {path}{hint}")
        saved = read_thresholds(Path(stage1).parent)
        source = {"stage1": Path(stage1), "stage2": Path(stage2)}
        source["thresholds"] = {k: float(saved[k]) for k in ("t1", "t2") if k in saved}
        source["thresholds_from"] = THRESHOLDS_FILE if saved else "checkpoints"
        source["data"] = {k: v for k, v in (saved.get("data") or {}).items() if k in DATA_KEYS}
    for key in ("t1", "t2"):
        value = getattr(args, key)
        if value is not None:
            source["thresholds"][key] = value
            source["thresholds_from"] = "command line"
    return source


def data_kwargs(source: dict[str, Any], cascade: Any, args: argparse.Namespace) -> dict[str, Any]:
    """XrayDataModule arguments, 3-class: a run's own data config, else the checkpoints'
    preprocess spec plus the split settings saved by ``--export``."""
    if args.run is not None and (args.run / ".hydra" / "config.yaml").is_file():
        from xray_lightning.report import data_kwargs as run_data_kwargs

        return run_data_kwargs(args.run, cascade, args.data_root)
    spec = cascade.preprocess or {}
    if "image_size" not in spec:
        raise CheckpointError("the stage checkpoints carry no preprocess spec (hparams.preprocess)")
    root = args.data_root or os.environ.get("XRAY_DATA_ROOT") or REPO / "data" / "dataset"
    keys = ("image_size", "expect_size", "expect_mode", "layout", "preprocessing")
    kwargs = {"root": root, "stage": "three_class", **{k: spec[k] for k in keys if k in spec}}
    return kwargs | source["data"]


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Rebuild the cascade, predict val and test, and compute the cascade's metrics."""
    from xray_lightning.data import XrayDataModule
    from xray_lightning.modules.cascade import CascadeModule
    from xray_lightning.operating_point import cascade_metrics, cascade_probabilities

    started = time.perf_counter()
    source = resolve_source(args)
    cascade = CascadeModule.from_checkpoints(
        source["stage1"], source["stage2"], **source["thresholds"], fold_bn=True
    ).float()
    datamodule = XrayDataModule(**data_kwargs(source, cascade, args))
    datamodule.setup("test")
    spec = cascade.preprocess
    if spec.get("mean") is not None:
        # The checkpoints' own normalisation, as predict applies it to new files.
        datamodule.data.mean, datamodule.data.std = spec["mean"], spec["std"]
    probs = {split: cascade_probabilities(cascade, datamodule, split) for split in SPLITS}
    probs = {split: p for split, p in probs.items() if len(p.labels)}
    metrics, confusion = cascade_metrics(probs, cascade.t1, cascade.t2)
    result: dict[str, Any] = {
        "stage1": str(source["stage1"]),
        "stage2": str(source["stage2"]),
        "run_dir": str(args.run) if args.run is not None else None,
        "thresholds": {"t1": cascade.t1, "t2": cascade.t2},
        "thresholds_from": source["thresholds_from"],
        "data_root": str(datamodule.root),
        "images": {split: len(p.labels) for split, p in probs.items()},
        "class_names": list(cascade.class_names),
        "metrics": metrics,
        "confusion": confusion,
    }
    if args.run is not None:
        result["recorded_max_abs_diff"] = recorded_difference(args.run, metrics)
    result["wall_time_s"] = round(time.perf_counter() - started, 2)
    return result


def recorded_difference(run_dir: Path, metrics: dict[str, float]) -> float | None:
    """Largest |re-measured - metrics.json| over the val/test metrics both have (None: none)."""
    from xray_lightning.runinfo import read_metrics

    recorded = read_metrics(run_dir).get("metrics") or {}
    diffs = [
        abs(value - recorded[key])
        for key, value in metrics.items()
        if isinstance(recorded.get(key), int | float) and not math.isnan(value)
    ]
    return max(diffs) if diffs else None


def report_text(result: dict[str, Any]) -> str:
    """The human-readable report: test first, then val."""
    t = result["thresholds"]
    lines = [
        f"stage 1: {result['stage1']}",
        f"stage 2: {result['stage2']}",
        f"thresholds: t1 {t['t1']:.4f}, t2 {t['t2']:.4f} (from {result['thresholds_from']}); "
        "normal if p_infected < t1, else covid if p_covid >= t2, else non-covid",
        f"data: {result['data_root']}",
    ]
    m = result["metrics"]
    for split in SPLITS:
        if split not in result["images"]:
            continue
        lines += [
            "",
            f"{split} ({result['images'][split]} images)",
            f"  3-class accuracy {m[f'{split}/acc']:.4f}   macro F1 {m[f'{split}/f1_macro']:.4f}",
            f"  {'class':<10} {'precision':>9} {'recall':>8}",
        ]
        for name in result["class_names"]:
            key = name.replace("-", "_")
            lines.append(
                f"  {name:<10} {m[f'{split}/precision_{key}']:>9.4f} "
                f"{m[f'{split}/recall_{key}']:>8.4f}"
            )
        lines.append(
            f"  stage 1 (normal vs infected): accuracy {m[f'{split}/stage1/acc']:.4f}, "
            f"recall {m[f'{split}/stage1/recall']:.4f}, "
            f"precision {m[f'{split}/stage1/precision']:.4f}"
        )
        if f"{split}/stage2/acc" in m:
            lines.append(
                f"  stage 2 (covid vs non-covid, truly infected images only): "
                f"accuracy {m[f'{split}/stage2/acc']:.4f}"
            )
        matrix = result["confusion"][split]
        lines.append(
            "  confusion (rows true, columns predicted: "
            + ", ".join(result["class_names"])
            + "): "
            + "; ".join(" ".join(map(str, r)) for r in matrix)
        )
    diff = result.get("recorded_max_abs_diff")
    if diff is not None:
        verdict = "matches" if diff < 1e-4 else "DIFFERS from"
        lines += ["", f"{verdict} the run's metrics.json (largest difference {diff:.2g})"]
    return "\n".join(lines)


def export_cascade(run_dir: Path, target: Path, force: bool = False) -> dict[str, Path]:
    """Slim stage checkpoints + thresholds.json of a finished cascade run, written to ``target``."""
    from omegaconf import OmegaConf

    from xray_lightning.modules.cascade import CascadeModule
    from xray_lightning.modules.checkpoints import save_weights_only
    from xray_lightning.predict import cascade_checkpoints
    from xray_lightning.runinfo import read_metrics

    stage1, stage2, thresholds = cascade_checkpoints(run_dir)
    if target.exists() and not target.is_dir():
        raise ExportError(f"--to {target} exists and is not a folder")
    names = [*STAGE_FILES, THRESHOLDS_FILE]
    existing = [name for name in names if (target / name).exists()]
    if existing and not force:
        raise ExportError(
            f"{target} already holds {', '.join(existing)}: pass --force to replace them"
        )
    result = read_metrics(run_dir)
    data: dict[str, Any] = {}
    hydra_config = run_dir / ".hydra" / "config.yaml"
    if hydra_config.is_file():
        cfg = OmegaConf.to_container(OmegaConf.load(hydra_config).data, resolve=False)
        data = {k: cfg[k] for k in DATA_KEYS if k in cfg}  # type: ignore[index, operator]
    written = {
        "stage1": save_weights_only(stage1, target / STAGE_FILES[0]),
        "stage2": save_weights_only(stage2, target / STAGE_FILES[1]),
    }
    metrics = result.get("metrics") or {}
    saved = {
        **thresholds,
        "operating_point": result.get("operating_point", "accuracy_first"),
        "target_recall": (result.get("operating_points") or {})
        .get(result.get("operating_point", ""), {})
        .get("target_recall"),
        "source_run": str(run_dir.resolve()),
        "source_checkpoints": {"stage1": str(stage1), "stage2": str(stage2)},
        "data": data,
        "metrics": {k: v for k, v in metrics.items() if k.split("/")[0] in SPLITS},
        "exported": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    path = target / THRESHOLDS_FILE
    path.write_text(json.dumps(saved, indent=2) + "\n")
    written["thresholds"] = path
    CascadeModule.from_checkpoints(written["stage1"], written["stage2"], **thresholds)
    return written


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m xray_lightning.evaluate",
        description="Re-measure a trained cascade on the test and val splits, or export one.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--run", type=Path, help="a cascade run dir (its metrics.json is read)")
    source.add_argument("--stage1", type=Path, help="stage-1 (normal vs infected) checkpoint")
    source.add_argument("--export", type=Path, metavar="RUN_DIR", help="cascade run to export")
    parser.add_argument("--stage2", type=Path, help="stage-2 (covid vs non-covid) checkpoint")
    parser.add_argument("--t1", type=float, help="infected if p_infected >= t1")
    parser.add_argument("--t2", type=float, help="covid if p_covid >= t2")
    parser.add_argument(
        "--data-root",
        type=Path,
        help="dataset folder (default: the run's, else XRAY_DATA_ROOT, else data/dataset)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--to", type=Path, default=SHIPPED, help="--export: target folder")
    parser.add_argument("--force", action="store_true", help="--export: replace existing files")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.stage1 is None) != (args.stage2 is None):
        parser.error("--stage1 and --stage2 go together (or pass --run RUN_DIR)")
    if args.export is not None and (args.t1 is not None or args.t2 is not None):
        parser.error("--export copies the run's own thresholds; --t1/--t2 are for evaluating")
    try:
        if args.export is not None:
            written = export_cascade(args.export, args.to, args.force)
            for name, path in written.items():
                print(f"{name}: {path} ({path.stat().st_size / 1e6:.2f} MB)")
            return EXIT_OK
        result = evaluate(args)
    except (XrayLightningError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(result, indent=2) if args.json else report_text(result))
    return EXIT_OK


if __name__ == "__main__":
    run_cli(main)
