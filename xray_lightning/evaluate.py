"""Re-measure a trained cascade on the official test split (and val), or export one for shipping.

    python -m xray_lightning.evaluate [--stage1 CKPT --stage2 CKPT | --run RUN_DIR]
        [--t1 T] [--t2 T] [--data-root DIR] [--json]
    python -m xray_lightning.evaluate --export RUN_DIR [--to experiments/best] [--force]

Without --stage1/--stage2/--run the shipped cascade is evaluated: ``experiments/best/stage1.ckpt``
and ``stage2.ckpt`` with the thresholds in ``experiments/best/thresholds.json``. The cascade is
rebuilt as ``predict`` rebuilds it (``labeller.Labeller``, by the same ``--runtime``: ONNX Runtime
where installed) and run in float32 on the CPU over the data's val and test splits, normalised
with the checkpoints' own preprocess spec; the metrics are ``operating_point.cascade_metrics``,
the ones a training run writes. The adapted block re-estimates BatchNorm in PyTorch
(``CascadeModule``).

``--export`` writes slim weights-only copies of a cascade run's two best checkpoints and a
``thresholds.json`` (the run's thresholds, its data split settings and its metrics) into ``--to``.

Exit status: 0 done, 2 bad checkpoint, run dir, data or arguments.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xray_lightning import bootstrap, progress, runs
from xray_lightning.cli import command_parser
from xray_lightning.errors import XrayLightningError
from xray_lightning.exits import run_cli
from xray_lightning.onnx_stage import RUNTIMES
from xray_lightning.runinfo import read_metrics

SPLITS = ("test", "val")
EXIT_OK, EXIT_USAGE = 0, 2


class ExportError(XrayLightningError):
    """An export would overwrite a shipped cascade, or its target is not a folder."""


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Rebuild the cascade, predict val and test, and compute the cascade's metrics."""
    from xray_lightning.data import XrayDataModule
    from xray_lightning.labeller import Labeller
    from xray_lightning.operating_point import cascade_metrics

    started = time.perf_counter()
    source = runs.cascade_source(
        args.run, args.stage1, args.stage2, args.t1, args.t2, getattr(args, "model", None)
    )
    cascade = Labeller.from_checkpoints(  # several members per stage: their ensemble
        source.stage1_checkpoints,
        source.stage2_checkpoints,
        **source.thresholds,
        runtime=getattr(args, "runtime", "torch"),  # what predict runs, so its numbers
    )
    datamodule = XrayDataModule(**runs.data_settings(source, cascade.preprocess, args.data_root))
    datamodule.setup("test")
    probs = label_splits(cascade, datamodule, SPLITS, "labelling " + " and ".join(SPLITS))
    probs = {split: p for split, p in probs.items() if len(p.labels)}
    metrics, confusion = cascade_metrics(probs, cascade.t1, cascade.t2)
    result: dict[str, Any] = {
        "stage1": ", ".join(map(str, source.stage1_checkpoints)),
        "stage2": ", ".join(map(str, source.stage2_checkpoints)),
        "run_dir": str(args.run) if args.run is not None else None,
        "thresholds": {"t1": cascade.t1, "t2": cascade.t2},
        "thresholds_from": source.thresholds_from,
        "data_root": str(datamodule.root),
        "images": {split: len(p.labels) for split, p in probs.items()},
        "class_names": list(cascade.class_names),
        "metrics": metrics,
        "confusion": confusion,
    }
    if args.run is not None:
        result["recorded_max_abs_diff"] = recorded_difference(args.run, metrics)
    result["intervals"] = (
        {"test": bootstrap.intervals(probs["test"], cascade.t1, cascade.t2)}
        if "test" in probs
        else {}
    )
    result["calibration"] = calibration_report(source, probs, cascade.t1, cascade.t2, args)
    if getattr(args, "shifts", False):
        result["shifted_val"] = shifted_val(cascade, source, args.data_root)
    if getattr(args, "adapt", False):
        result["adapted"] = adapted_report(source, datamodule, list(probs))
    result["wall_time_s"] = round(time.perf_counter() - started, 2)
    return result


def label_splits(
    cascade: Any, datamodule: Any, splits: Sequence[str], description: str
) -> dict[str, runs.SplitPredictions]:
    """``runs.split_predictions`` of each split (stage 2 where the metrics read it), with one
    progress bar over all their images where stderr is a terminal."""
    total = sum(len(datamodule.split_paths(split)) for split in splits)
    with progress.image_bar(total, description, progress.watched()) as bar:
        return {
            split: runs.split_predictions(
                cascade, datamodule, split, stage2_where_needed=True, on_batch=bar.update
            )
            for split in splits
        }


def calibration_report(
    source: runs.CascadeSource,
    probs: dict[str, Any],
    t1: float,
    t2: float,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """ECE before/after temperature scaling per stage, and the refer band's effect, per split.

    The calibration is the model folder's (thresholds.json), or with ``--calibrate`` fitted here
    on val and, for a model folder, saved into its thresholds.json. Test is only measured.
    """
    from xray_lightning import calibration as cal

    saved = cal.Calibration.from_saved(source.calibration)
    saved_to = None
    if getattr(args, "calibrate", False):
        if "val" not in probs:
            raise runs.RunDirError("--calibrate needs a val split to fit on")
        saved = cal.fit(probs["val"], t1, t2)
        if source.folder is not None:
            saved_to = str(save_calibration(source.folder, saved))
    report: dict[str, Any] = {"fitted": saved.to_saved(), "saved_to": saved_to}
    for split, p in probs.items():
        referred = saved.refer(p.p_infected, p.p_covid, t1, t2, p.spread)
        report[split] = {}
        for stage, (raw, calibrated, targets) in cal.calibrated_stage_scores(p, saved).items():
            report[split][f"ece_{stage}"] = cal.ece(raw, targets)
            report[split][f"ece_{stage}_calibrated"] = cal.ece(calibrated, targets)
        report[split] |= cal.referral_outcome(p.predicted, p.labels, referred)
    return report


def adapted_report(
    source: runs.CascadeSource, datamodule: Any, splits: list[str]
) -> dict[str, Any]:
    """The *adapted* block: per split, a fresh copy of the cascade whose BatchNorm statistics are
    re-estimated on that split's own images (labels unread), then measured as the inductive one."""
    import copy

    import torch

    from xray_lightning import adapt
    from xray_lightning.modules.cascade import CascadeModule
    from xray_lightning.operating_point import cascade_metrics

    unadapted = CascadeModule.from_checkpoints(  # BatchNorm kept, to be re-estimated per split
        source.stage1_checkpoints, source.stage2_checkpoints, **source.thresholds
    ).float()
    probs, used = {}, {}
    for split in splits:
        cascade = copy.deepcopy(unadapted)
        inputs = torch.cat(
            [
                datamodule.transform_batch(batch, train=False)[0]
                for batch in datamodule.split_dataloader(split)
            ]
        )
        used[split] = adapt.adapt_cascade(cascade, inputs)
        probs |= label_splits(cascade, datamodule, [split], f"labelling {split}, adapted")
    metrics, confusion = cascade_metrics(probs, cascade.t1, cascade.t2)
    return {
        "stages": list(adapt.STAGES),
        "min_images": adapt.MIN_IMAGES,
        "adapted_on": {
            split: ", ".join(f"{stage} {n} images" for stage, n in u.items())
            for split, u in used.items()
        },
        "metrics": metrics,
        "confusion": confusion,
        "intervals": (
            {"test": bootstrap.intervals(probs["test"], cascade.t1, cascade.t2)}
            if "test" in probs
            else {}
        ),
    }


def shifted_val(cascade: Any, source: runs.CascadeSource, data_root: Path | None) -> dict:
    """The cascade's val metrics under each declared synthetic site shift (``shifts``)."""
    from xray_lightning import robustness
    from xray_lightning.data import XrayDataModule

    settings = runs.data_settings(source, cascade.preprocess, data_root)
    raw = XrayDataModule(**robustness.raw_datamodule_settings(settings))
    raw.setup("test")
    images, labels = robustness.raw_split(raw, "val")
    return robustness.shifted_metrics(cascade, images, labels)


def shifted_lines(shifted: dict[str, dict[str, float]]) -> list[str]:
    lines = [
        "",
        f"val under synthetic site shifts ({len(shifted) - 2} declared in "
        "xray_lightning/shifts.py; inductive): 3-class / stage 1 / stage 2 accuracy",
    ]
    for name, m in shifted.items():
        stage2 = m.get("stage2/acc", float("nan"))
        lines.append(f"  {name:<13} {m['acc']:.4f} / {m['stage1/acc']:.4f} / {stage2:.4f}")
    return lines


def save_calibration(folder: Path, calibration: Any) -> Path:
    """Write ``calibration`` into ``folder/thresholds.json`` (atomically), the rest kept."""
    from xray_lightning.durable import write_text_atomic

    path = folder / runs.THRESHOLDS_FILE
    saved = runs.read_thresholds(folder) if path.is_file() else {}
    saved["calibration"] = calibration.to_saved()
    return write_text_atomic(path, json.dumps(saved, indent=2) + "\n")


def recorded_difference(run_dir: Path, metrics: dict[str, float]) -> float | None:
    """Largest |re-measured - metrics.json| over the val/test metrics both have (None: none)."""
    recorded = read_metrics(run_dir).get("metrics") or {}
    diffs = [
        abs(value - recorded[key])
        for key, value in metrics.items()
        if isinstance(recorded.get(key), int | float) and not math.isnan(value)
    ]
    return max(diffs) if diffs else None


def block_lines(result: dict[str, Any], kind: str) -> list[str]:
    """One block of the report (``result``'s metrics, intervals and confusions), split by split."""
    lines: list[str] = []
    m = result["metrics"]
    for split in SPLITS:
        if f"{split}/acc" not in m:
            continue
        ci = (result.get("intervals") or {}).get(split) or {}

        def num(key: str, split: str = split, ci: dict = ci) -> str:
            value = f"{m[f'{split}/{key}']:.4f}"
            return value + (f" [{ci[key][0]:.3f}, {ci[key][1]:.3f}]" if key in ci else "")

        note = ", 95% bootstrap intervals" if ci else ""
        lines += [
            "",
            f"{split} ({result['images'][split]} images; {kind}{note})",
            f"  3-class accuracy {num('acc')}   macro F1 {num('f1_macro')}",
            f"  {'class':<10} {'precision':>22} {'recall':>22}",
        ]
        for name in result["class_names"]:
            key = name.replace("-", "_")
            lines.append(f"  {name:<10} {num(f'precision_{key}'):>22} {num(f'recall_{key}'):>22}")
        lines.append(
            f"  stage 1 (normal vs infected): accuracy {num('stage1/acc')}, "
            f"recall {num('stage1/recall')}, precision {num('stage1/precision')}"
        )
        if f"{split}/stage2/acc" in m:
            lines.append(
                "  stage 2 (covid vs non-covid, truly infected images only): "
                f"accuracy {num('stage2/acc')}"
            )
        matrix = result["confusion"][split]
        lines.append(
            "  confusion (rows true, columns predicted: "
            + ", ".join(result["class_names"])
            + "): "
            + "; ".join(" ".join(map(str, r)) for r in matrix)
        )
    return lines


def report_text(result: dict[str, Any]) -> str:
    """The human-readable report: the *inductive* block (nothing fitted on the images measured),
    test first with 95% bootstrap intervals, then val; with ``--adapt``, the *adapted* block
    apart, after it."""
    t = result["thresholds"]
    lines = [
        f"stage 1: {result['stage1']}",
        f"stage 2: {result['stage2']}",
        f"thresholds: t1 {t['t1']:.4f}, t2 {t['t2']:.4f} (from {result['thresholds_from']}); "
        "normal if p_infected < t1, else covid if p_covid >= t2, else non-covid",
        f"data: {result['data_root']}",
        "",
        "INDUCTIVE (the model as trained; nothing fitted on the images measured)",
    ]
    lines += block_lines(result, "inductive")
    adapted = result.get("adapted")
    if adapted:
        used = adapted["adapted_on"]
        lines += [
            "",
            "ADAPTED (transductive, opt-in --adapt: BatchNorm statistics of "
            + " and ".join(adapted["stages"])
            + " re-estimated on each split's own unlabelled images; reported apart, never mixed "
            "with the inductive numbers)",
        ]
        lines += [f"  {split}: adapted on {n}" for split, n in used.items()]
        lines += block_lines({**result, **adapted}, "adapted")
    lines += calibration_lines(result.get("calibration") or {})
    if result.get("shifted_val"):
        lines += shifted_lines(result["shifted_val"])
    diff = result.get("recorded_max_abs_diff")
    if diff is not None:
        verdict = "matches" if diff < 1e-4 else "DIFFERS from"
        lines += ["", f"{verdict} the run's metrics.json (largest difference {diff:.2g})"]
    return "\n".join(lines)


def calibration_lines(report: dict[str, Any]) -> list[str]:
    fitted = report.get("fitted") or {}
    if fitted.get("fitted_on", "none") == "none":
        return ["", "calibration: none saved with this model (fit one on val: --calibrate)"]
    lines = [
        "",
        f"calibration (fitted on {fitted['fitted_on']}): temperature stage 1 "
        f"{fitted['t_stage1']:.3f}, stage 2 {fitted['t_stage2']:.3f}; refer when a deciding "
        f"stage's calibrated probability is within {fitted['refer_margin']:.3f} of its threshold"
        + (
            f", or the members' probabilities there spread (std) over {fitted['refer_spread']:.3f}"
            if fitted.get("refer_spread") is not None
            else ""
        )
        + (f"; saved to {report['saved_to']}" if report.get("saved_to") else ""),
    ]
    for split in SPLITS:
        r = report.get(split)
        if not r:
            continue
        acc = r["acc_not_referred"]
        recall = r["infected_recall_not_referred"]
        lines.append(
            f"  {split}: ECE stage 1 {r['ece_stage1']:.4f} -> {r['ece_stage1_calibrated']:.4f}, "
            f"stage 2 {r['ece_stage2']:.4f} -> {r['ece_stage2_calibrated']:.4f}; referred "
            f"{r['referred']:.1%}, 3-class accuracy of the rest "
            f"{'-' if acc is None else f'{acc:.4f}'}, infected recall of the rest "
            f"{'-' if recall is None else f'{recall:.4f}'}"
        )
    return lines


def export_cascade(run_dir: Path, target: Path, force: bool = False) -> dict[str, Path]:
    """Slim stage checkpoints + thresholds.json of a finished cascade run, written to ``target``."""
    from xray_lightning.modules.cascade import CascadeModule
    from xray_lightning.modules.checkpoints import save_weights_only

    stage1s, stage2s, thresholds = runs.cascade_members(run_dir)
    if target.exists() and not target.is_dir():
        raise ExportError(f"--to {target} exists and is not a folder")
    names = {  # member 0 keeps the single-cascade names; an ensemble's others: stage1.m1.ckpt ...
        stage: [runs.STAGE_FILES[i]] + [f"stage{i + 1}.m{k}.ckpt" for k in range(1, len(ckpts))]
        for i, (stage, ckpts) in enumerate((("stage1", stage1s), ("stage2", stage2s)))
    }
    files = [*names["stage1"], *names["stage2"], runs.THRESHOLDS_FILE]
    existing = [name for name in files if (target / name).exists()]
    if existing and not force:
        raise ExportError(
            f"{target} already holds {', '.join(existing)}: pass --force to replace them"
        )
    result = read_metrics(run_dir)
    data = {
        k: v for k, v in (runs.run_data_settings(run_dir) or {}).items() if k in runs.SPLIT_KEYS
    }
    written: dict[str, Path] = {}
    for stage, ckpts in (("stage1", stage1s), ("stage2", stage2s)):
        for k, (ckpt, name) in enumerate(zip(ckpts, names[stage], strict=True)):
            written[stage if k == 0 else f"{stage}.m{k}"] = save_weights_only(ckpt, target / name)
    metrics = result.get("metrics") or {}
    saved = {
        **thresholds,
        "operating_point": result.get("operating_point", "accuracy_first"),
        "target_recall": (result.get("operating_points") or {})
        .get(result.get("operating_point", ""), {})
        .get("target_recall"),
        "source_run": str(run_dir.resolve()),
        "source_checkpoints": {"stage1": str(stage1s[0]), "stage2": str(stage2s[0])},
        "data": data,
        "metrics": {k: v for k, v in metrics.items() if k.split("/")[0] in SPLITS},
        "exported": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    if len(stage1s) > 1 or len(stage2s) > 1:
        saved["members"] = names
    path = target / runs.THRESHOLDS_FILE
    path.write_text(json.dumps(saved, indent=2) + "\n")
    written["thresholds"] = path
    CascadeModule.from_checkpoints(  # the written files load as the cascade they are
        [target / name for name in names["stage1"]],
        [target / name for name in names["stage2"]],
        **thresholds,
    )
    return written


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "xray_lightning.evaluate",
        "Re-measure a trained cascade on the test and val splits, or export one.",
        [
            "{prog}                       (the shipped model)",
            "{prog} --run logs/cascade/runs/2026-12-01_10-00-00 --json",
            "{prog} --export logs/cascade/runs/2026-12-01_10-00-00 --to my_model/",
        ],
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--model", type=Path, help="a model folder: stage1.ckpt, stage2.ckpt, thresholds.json"
    )
    source.add_argument("--run", type=Path, help="a cascade run dir (its metrics.json is read)")
    source.add_argument(
        "--stage1",
        type=Path,
        action="append",
        help="stage-1 (normal vs infected) checkpoint; repeat it for an ensemble (averaged)",
    )
    source.add_argument("--export", type=Path, metavar="RUN_DIR", help="cascade run to export")
    parser.add_argument(
        "--stage2",
        type=Path,
        action="append",
        help="stage-2 (covid vs non-covid) checkpoint; repeat it for an ensemble (averaged)",
    )
    parser.add_argument("--t1", type=float, help="infected if p_infected >= t1")
    parser.add_argument("--t2", type=float, help="covid if p_covid >= t2")
    parser.add_argument(
        "--data-root",
        type=Path,
        help="dataset folder (default: the run's, else XRAY_DATA_ROOT, else data/dataset)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="fit temperature scaling and the refer band on val (saved into a model folder)",
    )
    parser.add_argument(
        "--adapt",
        action="store_true",
        help="also an ADAPTED block: BatchNorm re-estimated on each split's unlabelled images "
        "(transductive; reported apart)",
    )
    parser.add_argument(
        "--shifts",
        action="store_true",
        help="also measure val under synthetic site shifts (blur, gamma, JPEG, ...; val only)",
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="auto",
        help="what runs the networks, as in predict: onnx, torch or auto (default: onnx where "
        "installed); the adapted block always runs in torch",
    )
    parser.add_argument("--to", type=Path, default=runs.SHIPPED, help="--export: target folder")
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


def entry_point() -> None:
    """The installed ``xray-evaluate`` command."""
    run_cli(main)


if __name__ == "__main__":
    entry_point()
