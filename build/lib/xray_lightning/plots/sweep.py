"""A sweep over one parameter: mean ± std over seeds per value, failed values marked."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

Stat = tuple[float | None, float | None]  # (mean, std) over seeds; None: no value / one seed
FAILED_LABEL = "failed (no seed finished: NaN loss / crash)"
LOG_SPAN = 20.0  # positive numeric values spanning more than this factor get a log x axis


def numeric_values(values: Sequence[str]) -> list[float] | None:
    """The values as finite floats, or None when any of them is not a number."""
    try:
        numbers = [float(value) for value in values]
    except ValueError:
        return None
    return numbers if all(math.isfinite(n) for n in numbers) else None


def use_log_axis(numbers: Sequence[float]) -> bool:
    """All positive and spanning more than a factor of ``LOG_SPAN``."""
    return bool(numbers) and min(numbers) > 0 and max(numbers) / min(numbers) > LOG_SPAN


def sweep_figure(
    values: Sequence[str],
    series: Mapping[str, Sequence[Stat]],
    counts: Sequence[tuple[int, int]],
    param: str,
    title: str = "",
    ylabel: str = "accuracy",
) -> Figure:
    """One error-bar series per entry of ``series`` (a (mean, std) per value of ``param``).

    ``counts[i]`` is (successful seeds, seeds) of value i: values with no successful seed are
    drawn as an x at the bottom, values with some failed seeds are annotated ``k/n seeds``.
    Numeric values are placed on a number line (log when they span > 20x), others by category.
    """
    numbers = numeric_values(values)
    log = numbers is not None and use_log_axis(numbers)
    xs = numbers if numbers is not None else list(range(len(values)))
    fig = Figure(figsize=(max(6.4, 0.55 * len(values) + 2.5), 4.6))
    ax = fig.subplots()
    offsets = _offsets(len(series)) if numbers is None else [0.0] * len(series)
    for (name, stats), offset in zip(series.items(), offsets, strict=True):
        means = [math.nan if mean is None else mean for mean, _ in stats]
        stds = [0.0 if std is None else std for _, std in stats]
        ax.errorbar(
            [x + offset for x in xs],
            means,
            yerr=stds,
            fmt="-o" if numbers is not None else "o",
            markersize=6,
            capsize=4,
            linewidth=1.5,
            label=name,
        )
    failed = [x for x, (n_ok, _) in zip(xs, counts, strict=True) if n_ok == 0]
    if failed:
        ax.plot(
            failed,
            [0.04] * len(failed),
            "x",
            color="tab:red",
            markersize=10,
            markeredgewidth=2.5,
            transform=ax.get_xaxis_transform(),  # x in data, y in axes fraction: the bottom
            clip_on=False,
            label=FAILED_LABEL,
        )
    for x, (n_ok, n_jobs) in zip(xs, counts, strict=True):
        if 0 < n_ok < n_jobs:
            ax.annotate(
                f"{n_ok}/{n_jobs} seeds",
                (x, 0.015),
                xycoords=ax.get_xaxis_transform(),
                rotation=90,
                ha="center",
                va="bottom",
                fontsize=7.5,
                color="tab:red",
            )
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
    crowded = len(values) > 6
    ax.set_xticks(xs)
    ax.set_xticklabels(
        [f"{n:g}" for n in numbers] if numbers is not None else list(values),
        rotation=90 if crowded and numbers is not None else 30 if crowded else 0,
        ha="right" if crowded and numbers is None else "center",
        fontsize=9,
    )
    if numbers is None:
        ax.set_xlim(-0.5, len(values) - 0.5)
    if all(n_ok == 0 for n_ok, _ in counts):  # nothing but failures: an accuracy range anyway
        ax.set_ylim(0.0, 1.0)
    if any(n_ok < n_jobs for n_ok, n_jobs in counts):  # room for the marks at the bottom
        low, high = ax.get_ylim()
        ax.set_yticks([t for t in ax.get_yticks() if low - 1e-9 <= t <= high + 1e-9])
        ax.set_ylim(low - 0.2 * (high - low), high)  # the band below holds no tick
    ax.set_xlabel(param + (" (log scale)" if log else ""))
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i].startswith("failed"))  # last
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def _offsets(n: int, width: float = 0.08) -> list[float]:
    """Side-by-side shifts (in category units) so categorical error bars do not hide each other."""
    return [(i - (n - 1) / 2) * width for i in range(n)]
