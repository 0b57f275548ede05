"""Learning curves read from a run's TensorBoard event files (TensorBoard's own reader)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from xray_lightning.plots.io import FigureInputError

CURVE_METRICS = ("loss", "acc", "precision", "recall")
CURVE_SPLITS = ("train", "val", "test")
Curves = dict[str, dict[str, list[tuple[int, float]]]]  # metric -> split -> [(epoch, value)]


def read_scalars(log_dir: str | Path) -> dict[str, dict[int, float]]:
    """``{tag: {global step: value}}`` of every scalar in the event files under ``log_dir``.

    When a step was logged twice (a resumed run), the last value wins.
    """
    from tensorboard.backend.event_processing import event_accumulator

    log_dir = Path(log_dir)
    if not any(log_dir.glob("events.out.tfevents.*")):
        raise FigureInputError(f"no TensorBoard event files in {log_dir}")
    accumulator = event_accumulator.EventAccumulator(
        str(log_dir), size_guidance={event_accumulator.SCALARS: 0}
    )
    accumulator.Reload()
    return {
        tag: {event.step: float(event.value) for event in accumulator.Scalars(tag)}
        for tag in accumulator.Tags()["scalars"]
    }


def epoch_curves(scalars: Mapping[str, Mapping[int, float]]) -> Curves:
    """Per-epoch curves: each training epoch's global step mapped to its ``epoch`` scalar.

    Only steps where a ``train/`` metric was logged count, so the final evaluation of the best
    checkpoint (logged after training, at the last step) does not add a spurious point.
    """
    epochs = scalars.get("epoch", {})
    train_steps = set().union(*(scalars.get(f"train/{m}", {}) for m in CURVE_METRICS))
    curves: Curves = {}
    for metric in CURVE_METRICS:
        for split in CURVE_SPLITS:
            values = scalars.get(f"{split}/{metric}", {})
            points = [
                (int(epochs[step]) if step in epochs else None, value)
                for step, value in sorted(values.items())
                if step in train_steps or not train_steps
            ]
            if any(epoch is None for epoch, _ in points):  # no epoch scalar: count the points
                points = [(i, value) for i, (_, value) in enumerate(points)]
            if points:
                curves.setdefault(metric, {})[split] = points  # type: ignore[assignment]
    if not curves:
        raise FigureInputError(
            f"no per-epoch scalars among {', '.join(f'<split>/{m}' for m in CURVE_METRICS)}"
        )
    return curves


def learning_curves_figure(
    curves: Curves, title: str = "", metrics: Sequence[str] = CURVE_METRICS
) -> Figure:
    """One panel per metric, one line per split (train, val, test), x axis = epoch."""
    styles = {"train": ("tab:blue", "-"), "val": ("tab:orange", "-"), "test": ("tab:green", "--")}
    fig = Figure(figsize=(3.6 * len(metrics), 3.4))
    axes = fig.subplots(1, len(metrics), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for split, points in curves.get(metric, {}).items():
            color, line = styles.get(split, ("gray", ":"))
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, line, color=color, marker="o", markersize=3, label=split)
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if metric != "loss":
            ax.set_ylim(-0.02, 1.02)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
