"""``make report``: every figure of a cascade run, as PNGs in ``RUN/figures/`` and in TensorBoard.

    python -m xray_lightning.report [RUN_DIR] [--data-root DIR] [--target-recall 0.98]
        [--no-tensorboard]

RUN_DIR defaults to the latest cascade run under ``logs/cascade/runs/``. The figures: class
distribution (the data audit's plot), learning curves per stage, the showcase grid, confusion
matrices (each stage and the cascade, counts and row-normalised), ROC curves per stage with the
operating points marked, the failure gallery, first-layer feature maps and Grad-CAM overlays.
The accuracy-first vs recall-first comparison is printed and written to
``figures/operating_points.md``: taken from metrics.json when the run had
``task.cascade.target_recall``, otherwise computed here (``--target-recall``, on val; reported
on test).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from xray_lightning import runs
from xray_lightning.cli import command_parser
from xray_lightning.data import XrayDataModule
from xray_lightning.decision import stage_scores
from xray_lightning.errors import XrayLightningError
from xray_lightning.exits import run_cli
from xray_lightning.modules.cascade import CascadeModule
from xray_lightning.operating_point import cascade_metrics, comparison_table
from xray_lightning.operating_point import operating_points as compute_operating_points
from xray_lightning.plots.io import FigureInputError, log_pngs_to_tensorboard, save_figure
from xray_lightning.runinfo import read_metrics
from xray_lightning.runs import SplitPredictions

DEFAULT_TARGET_RECALL = 0.98
SPLITS = ("val", "test", "showcase")
STAGE_TITLES = {"stage1": "stage 1: normal vs infected", "stage2": "stage 2: covid vs non-covid"}


@dataclass
class CascadeRun:
    """A finished cascade run with its data re-loaded and its predictions computed."""

    run_dir: Path
    result: dict[str, Any]
    cascade: CascadeModule
    datamodule: XrayDataModule
    splits: dict[str, SplitPredictions] = field(default_factory=dict)

    def stage_dir(self, folder: str) -> Path:
        return self.run_dir / folder


def load_cascade_run(
    run_dir: str | Path,
    data_root: str | Path | None = None,
    cascade: CascadeModule | None = None,
) -> CascadeRun:
    """Rebuild a cascade run's model (``CascadeModule.from_checkpoints`` at the run's thresholds,
    unless ``cascade`` is given), re-load its data and predict val, test and showcase."""
    source = runs.cascade_source(run=Path(run_dir))
    if cascade is None:
        cascade = CascadeModule.from_checkpoints(
            source.stage1_checkpoints, source.stage2_checkpoints, **source.thresholds
        )
    datamodule = XrayDataModule(**runs.data_settings(source, cascade.preprocess, data_root))
    datamodule.setup("test")
    run = CascadeRun(Path(run_dir), read_metrics(run_dir), cascade.eval(), datamodule)
    for split in SPLITS:
        if len(datamodule.split_labels(split)):
            run.splits[split] = runs.split_predictions(cascade, datamodule, split, keep_images=True)
    return run


def operating_points(run: CascadeRun, target_recall: Any = DEFAULT_TARGET_RECALL) -> dict:
    """accuracy-first and recall-first side by side: the run's own when it chose a recall
    target, else recall-first computed here on val for ``target_recall``."""
    saved = dict(run.result.get("operating_points") or {})
    if "recall_first" in saved:
        return saved
    probs = dict(run.splits)
    configured = (run.cascade.t1, run.cascade.t2)
    points = compute_operating_points(probs, configured, target_recall, computed_by="report")
    if "accuracy_first" in saved:
        points["accuracy_first"] = saved["accuracy_first"]
    return points


# -- figures ---------------------------------------------------------------------------------------
def figure_learning_curves(run: CascadeRun, folder: str):
    from xray_lightning.plots.curves import epoch_curves, learning_curves_figure, read_scalars

    curves = epoch_curves(read_scalars(run.stage_dir(folder) / "tensorboard"))
    return learning_curves_figure(curves, title=f"Learning curves, {STAGE_TITLES[folder]}")


def figure_showcase(run: CascadeRun):
    from xray_lightning.plots.gallery import showcase_figure

    data = run.splits["showcase"]
    p = data
    return showcase_figure(
        data.raw, data.labels, data.predicted, p.p_infected, p.p_covid, run.cascade.class_names
    )


def figure_failures(run: CascadeRun, split: str = "test", limit: int = 30):
    from xray_lightning.plots.gallery import failure_figure

    data = run.splits[split]
    names = [f"{p.parent.name}/{p.name}" for p in data.paths]
    p = data
    return failure_figure(
        data.raw,
        data.labels,
        data.predicted,
        p.p_infected,
        p.p_covid,
        run.cascade.class_names,
        names=names,
        limit=limit,
        title=f"{split.capitalize()} mistakes of the cascade, most confident first",
    )


def figure_confusion(run: CascadeRun, which: str, split: str = "test"):
    from torchmetrics.functional.classification import binary_confusion_matrix

    from xray_lightning.plots.confusion import confusion_pair_figure

    data = run.splits[split]
    cascade = run.cascade
    if which == "cascade":
        matrix = cascade_metrics({split: data}, cascade.t1, cascade.t2)[1][split]
        return confusion_pair_figure(
            matrix,
            cascade.class_names,
            f"Cascade on {split} (t1={cascade.t1:.3g}, t2={cascade.t2:.3g})",
        )
    scores, targets = stage_scores(data)[which]
    threshold = cascade.t1 if which == "stage1" else cascade.t2
    names = ("normal", "infected") if which == "stage1" else ("non-covid", "covid")
    matrix = binary_confusion_matrix(scores, targets, threshold=threshold)
    where = "" if which == "stage1" else ", truly infected images only"
    title = f"{STAGE_TITLES[which]} on {split}{where} (t={threshold:.3g})"
    return confusion_pair_figure(matrix.numpy(), names, title)


def figure_roc(run: CascadeRun, points: dict):
    from xray_lightning.plots.roc import roc_figure

    panels: dict[str, dict] = {STAGE_TITLES[s]: {} for s in STAGE_TITLES}
    for split in ("val", "test"):
        if split in run.splits:
            for stage, scores in stage_scores(run.splits[split]).items():
                panels[STAGE_TITLES[stage]][split] = scores
    marks = {
        STAGE_TITLES["stage1"]: {name: p["t1"] for name, p in points.items()},
        STAGE_TITLES["stage2"]: {name: p["t2"] for name, p in points.items()},
    }
    return roc_figure(panels, marks, title="ROC per stage (stage 2 on truly infected images)")


def figure_feature_maps(run: CascadeRun, folder: str, split: str = "test"):
    from xray_lightning.plots.saliency import feature_maps_figure

    data = run.splits[split]
    rows = [int(torch.nonzero(data.labels == c)[0]) for c in range(3) if (data.labels == c).any()]
    stage = run.cascade.stage1 if folder == "stage1" else run.cascade.stage2
    inputs = model_inputs(run, data.raw[rows])
    names = [f"{run.cascade.class_names[int(data.labels[i])]}" for i in rows]
    return feature_maps_figure(
        stage.net, inputs, data.raw[rows], names, title=f"Feature maps, {STAGE_TITLES[folder]}"
    )


def model_inputs(run: CascadeRun, raw: torch.Tensor) -> torch.Tensor:
    """uint8 [N,H,W] images from the loaders -> the normalised float input of the models."""
    labels = torch.zeros(len(raw), dtype=torch.long)
    return run.datamodule.transform_batch((raw[:, None], labels, torch.tensor(-1)), train=False)[0]


def gradcam_cases(data: SplitPredictions, per_kind: int = 4) -> tuple[list[int], list[bool]]:
    """Up to ``per_kind`` correct images (spread over the classes) and the most confident
    mistakes, for the Grad-CAM figure."""
    from xray_lightning.plots.gallery import decision_confidence, most_confident_mistakes

    right = data.labels == data.predicted
    confidence = decision_confidence(data.predicted, data.p_infected, data.p_covid)
    correct: list[int] = []
    for rank in range(per_kind):
        for c in range(3):
            idx = torch.nonzero(right & (data.labels == c)).flatten()
            if rank < len(idx) and len(correct) < per_kind:
                ordered = idx[torch.argsort(confidence[idx], descending=True, stable=True)]
                correct.append(int(ordered[rank]))
    p = data
    wrong = most_confident_mistakes(data.labels, data.predicted, p.p_infected, p.p_covid, per_kind)
    cases = correct + wrong.tolist()
    return cases, [not bool(right[i]) for i in cases]


def figure_gradcam(run: CascadeRun, split: str = "test"):
    from xray_lightning.plots.gallery import caption
    from xray_lightning.plots.saliency import grad_cam, gradcam_figure

    data = run.splits[split]
    cases, mistakes = gradcam_cases(data)
    if not cases:
        raise FigureInputError(f"no {split} images for Grad-CAM")
    raw = data.raw[cases]
    inputs = model_inputs(run, raw)
    p_inf, p_cov = data.p_infected[cases], data.p_covid[cases]
    cascade = run.cascade
    cams = {
        "stage 1 Grad-CAM\n(explains its decision)": grad_cam(
            cascade.stage1.net, inputs, p_inf >= cascade.t1
        ),
        "stage 2 Grad-CAM\n(explains its decision)": grad_cam(
            cascade.stage2.net, inputs, p_cov >= cascade.t2
        ),
    }
    captions = [
        f"{data.paths[i].parent.name}/{data.paths[i].name}\n"
        + caption(
            int(data.labels[i]),
            int(data.predicted[i]),
            float(data.p_infected[i]),
            float(data.p_covid[i]),
            cascade.class_names,
        )
        for i in cases
    ]
    return gradcam_figure(
        raw, cams, captions, mistakes, title=f"Grad-CAM on {split}: correct (green), wrong (red)"
    )


def run_calibration(run: CascadeRun):
    """Temperature scaling and the refer band fitted on the run's val split (``calibration``)."""
    from xray_lightning.calibration import fit

    if "val" not in run.splits:
        raise FigureInputError("calibration needs the val split")
    return fit(run.splits["val"], run.cascade.t1, run.cascade.t2)


def figure_reliability(run: CascadeRun, calibration: Any):
    """Reliability diagrams per stage, before and after temperature scaling (fitted on val)."""
    from xray_lightning.calibration import calibrated_stage_scores, ece
    from xray_lightning.plots.calibration import reliability_figure

    panels: dict[str, dict] = {STAGE_TITLES["stage1"]: {}, STAGE_TITLES["stage2"]: {}}
    eces: dict[str, dict] = {name: {} for name in panels}
    for split in ("val", "test"):
        if split not in run.splits:
            continue
        scores = calibrated_stage_scores(run.splits[split], calibration)
        for stage, (raw, cal, y) in scores.items():
            panels[STAGE_TITLES[stage]][split] = (raw, cal, y)
            eces[STAGE_TITLES[stage]][split] = (ece(raw, y), ece(cal, y))
    title = (
        f"Reliability, temperature fitted on val (T1 {calibration.t_stage1:.2f}, "
        f"T2 {calibration.t_stage2:.2f}); stage 2 on truly infected images"
    )
    return reliability_figure(panels, eces, title=title)


def figure_coverage(run: CascadeRun, calibration: Any):
    """Accuracy and infected recall of the images not referred, for each share referred."""
    from xray_lightning.calibration import coverage_curve
    from xray_lightning.plots.calibration import coverage_figure

    t1, t2 = run.cascade.t1, run.cascade.t2
    curves, chosen = {}, {}
    for split in ("val", "test"):
        if split in run.splits:
            data = run.splits[split]
            curves[split] = coverage_curve(data, calibration, t1, t2)
            referred = calibration.refer(data.p_infected, data.p_covid, t1, t2, data.spread)
            chosen[split] = float(referred.double().mean())
    spread = calibration.refer_spread
    title = (
        "Refer instead of guessing: the least sure first; dotted, the band chosen on val "
        f"(margin {calibration.refer_margin:.3f}"
        + (f", or members' spread above {spread:.3f})" if spread is not None else ")")
    )
    return coverage_figure(curves, chosen, title=title)


def make_report(
    run_dir: str | Path | None = None,
    data_root: str | Path | None = None,
    target_recall: Any = DEFAULT_TARGET_RECALL,
    tensorboard: bool = True,
    run: CascadeRun | None = None,
) -> dict[str, Path]:
    """Write every figure into ``RUN/figures/`` (and TensorBoard); return {name: png path}."""
    from xray_lightning.plots.distribution import class_distribution_figure

    run = run or load_cascade_run(run_dir or runs.latest_run(), data_root)
    out = run.run_dir / "figures"
    out.mkdir(parents=True, exist_ok=True)
    points = operating_points(run, target_recall)
    calibration = functools.cache(lambda: run_calibration(run))  # fitted once, for two figures
    figures = {
        "learning_curves_stage1": lambda: figure_learning_curves(run, "stage1"),
        "learning_curves_stage2": lambda: figure_learning_curves(run, "stage2"),
        "showcase": lambda: figure_showcase(run),
        "confusion_stage1": lambda: figure_confusion(run, "stage1"),
        "confusion_stage2": lambda: figure_confusion(run, "stage2"),
        "confusion_cascade": lambda: figure_confusion(run, "cascade"),
        "roc": lambda: figure_roc(run, points),
        "failures": lambda: figure_failures(run),
        "feature_maps_stage1": lambda: figure_feature_maps(run, "stage1"),
        "feature_maps_stage2": lambda: figure_feature_maps(run, "stage2"),
        "gradcam": lambda: figure_gradcam(run),
        "reliability": lambda: figure_reliability(run, calibration()),
        "coverage": lambda: figure_coverage(run, calibration()),
    }
    written: dict[str, Path] = {}
    counts = run.datamodule.summary()
    written["class_distribution"] = save_figure(
        class_distribution_figure(counts, title="Class distribution per split (3 classes)"),
        out / "class_distribution.png",
        dpi=120,
    )
    for name, make in figures.items():
        written[name] = save_figure(make(), out / f"{name}.png")
    table = "\n\n".join(comparison_table(points, split) for split in ("val", "test"))
    note = (
        "recall-first computed by `make report` on val (set task.cascade.target_recall to make "
        "it the run's own)\n\n"
        if (points.get("recall_first") or {}).get("computed_by")
        else ""
    )
    table_path = out / "operating_points.md"
    table_path.write_text(f"# Operating points\n\n{note}{table}\n")
    written["operating_points"] = table_path
    if tensorboard:
        pngs = {k: v for k, v in written.items() if v.suffix == ".png"}
        log_pngs_to_tensorboard(pngs, run.run_dir / "tensorboard")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser(
        "xray_lightning.report",
        __doc__.splitlines()[0],
        [
            "{prog}                       (the latest cascade run under logs/)",
            "{prog} RUN_DIR --no-tensorboard",
        ],
    )
    parser.add_argument("run", nargs="?", type=Path, help="cascade run dir (default: latest)")
    parser.add_argument("--data-root", type=Path, help="dataset folder (default: the run's)")
    parser.add_argument(
        "--target-recall",
        type=float,
        default=DEFAULT_TARGET_RECALL,
        help="recall target of the recall-first point when the run has none (default 0.98)",
    )
    parser.add_argument("--no-tensorboard", action="store_true", help="PNGs only")
    args = parser.parse_args(argv)
    try:
        run_dir = args.run or runs.latest_run()
        run = load_cascade_run(run_dir, args.data_root)
        written = make_report(
            run=run, target_recall=args.target_recall, tensorboard=not args.no_tensorboard
        )
    except (XrayLightningError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(written["operating_points"].read_text())
    print(f"figures in {run.run_dir / 'figures'}:")
    for name, path in written.items():
        print(f"  {name}: {path.name}")
    if not args.no_tensorboard:
        print(f"TensorBoard images: tensorboard --logdir {run.run_dir}")
    return 0


def entry_point() -> None:
    """The installed ``xray-report`` command."""
    run_cli(main)


if __name__ == "__main__":
    entry_point()
