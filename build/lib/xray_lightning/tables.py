"""Sweep summaries from the jobs' metrics.json files: one row per configuration, mean ± std.

    python -m xray_lightning.tables SWEEP_DIR [SWEEP_DIR ...] [--out DIR] [--plot PARAM]

Everything is read from files under the sweep dirs (each job's ``metrics.json``, else its
``.hydra/overrides.yaml``), never from in-process state, so jobs that ran in other processes or on
other hosts summarise the same way. A configuration is a job's overrides minus ``seed``; jobs of
several sweeps with the same configuration are pooled. For 3-class rows (cascade, three_class)
precision, recall and F1 are the macro averages. The best row is chosen on the validation metric
the checkpoints select on (``monitor``, e.g. val/acc), never on test. ``--plot PARAM`` also
draws val and test accuracy (mean ± std over seeds) against the swept parameter into
``sweep_<PARAM>.png`` beside the summary.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from xray_lightning.errors import XrayLightningError
from xray_lightning.exits import run_cli
from xray_lightning.runinfo import METRICS_FILE

SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"
OVERRIDES_FILE = Path(".hydra") / "overrides.yaml"
CONFIG_FILE = Path(".hydra") / "config.yaml"
SPLITS = ("val", "test")
METRICS = ("loss", "acc", "precision", "recall", "f1", "auroc")
THREE_CLASS_TASKS = frozenset({"cascade", "three_class"})
THREE_CLASS_NAMES = {"precision": "precision_macro", "recall": "recall_macro", "f1": "f1_macro"}
SEED_KEY = "seed"
RESUME_KEY = "resume_sweep"  # a rerun flag, not part of a job's configuration
MULTIRUN_FILE = "multirun.yaml"  # Hydra's BasicSweeper saves the sweep's config here
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
SWEEP_KEY = "sweep"  # the sweep=<name> override of make sweep-* (conf/sweep/<name>.yaml)
PLOT_METRICS = ("val/acc", "test/acc")
DEFAULT_MONITOR = "val/acc"
REASON_WIDTH = 100  # characters of a failure reason shown in summary.md (summary.csv has it all)


class TablesError(XrayLightningError):
    """A sweep dir is missing or holds no job."""


@dataclass
class Job:
    """One finished (or crashed) job, as read from its folder."""

    run_dir: Path
    overrides: list[str]
    status: str
    reason: str | None = None
    task: str | None = None
    seed: Any = None
    metrics: dict[str, float] = field(default_factory=dict)  # val/f1 ... (3-class: macro)
    raw_metrics: dict[str, float] = field(default_factory=dict)  # as in metrics.json
    monitor: str | None = None
    mode: str | None = None
    epochs: float | None = None
    best_epoch: float | None = None
    wall_time_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class Row:
    """One configuration: its overrides (without seed) and its jobs, one per seed."""

    config: dict[str, str]
    jobs: list[Job]

    def values(self, name: str) -> list[float]:
        """Values of a normalised metric (or epochs, best_epoch, wall_time_s) over ok jobs."""
        out = []
        for job in self.jobs:
            if not job.ok:
                continue
            value = job_value(job, name)
            if value is not None:
                out.append(value)
        return out

    def mean_std(self, name: str) -> tuple[float | None, float | None]:
        """Mean and sample std (n-1) over seeds; std is None below two values."""
        values = self.values(name)
        if not values:
            return None, None
        std = statistics.stdev(values) if len(values) > 1 else None
        return statistics.fmean(values), std

    @property
    def n_ok(self) -> int:
        return sum(job.ok for job in self.jobs)

    @property
    def status(self) -> str:
        if self.n_ok == len(self.jobs):
            return "ok"
        return "failed" if self.n_ok == 0 else "partial"

    @property
    def seeds(self) -> list[str]:
        return [str(job.seed) for job in self.jobs]

    def reasons(self) -> list[str]:
        return [f"seed {job.seed}: {job.reason}" for job in self.jobs if not job.ok]


@dataclass
class Summary:
    """Rows, the override keys that differ between them, and the best row by ``monitor``."""

    rows: list[Row]
    keys: list[str]
    monitor: str
    mode: str
    best: int | None
    sources: list[Path]

    @property
    def n_jobs(self) -> int:
        return sum(len(row.jobs) for row in self.rows)

    @property
    def n_failed(self) -> int:
        return sum(len(row.jobs) - row.n_ok for row in self.rows)


# -- reading jobs ------------------------------------------------------------------------------
def _leading_number(part: str) -> int | None:
    """The job number a Hydra job folder name starts with (``12_optimizer=sgd,...``, ``12``)."""
    match = re.match(r"(\d+)(?:_|$)", part)
    return int(match.group(1)) if match else None


def _job_order(path: Path) -> tuple:
    """Hydra job folders (``12_optimizer=sgd,...``) in job-number order, others by name."""
    numbers = ((_leading_number(part), part) for part in path.parts)
    return tuple((-1 if number is None else number, part) for number, part in numbers)


def find_job_dirs(sweep_dir: Path) -> list[Path]:
    """Folders under ``sweep_dir`` that are jobs: they hold metrics.json or .hydra/overrides.yaml.

    A job folder inside another one (a cascade's stage1/, stage2/) belongs to its parent.
    """
    candidates = {p.parent for p in sweep_dir.rglob(METRICS_FILE)}
    candidates |= {p.parent.parent for p in sweep_dir.rglob(str(OVERRIDES_FILE))}
    jobs = [d for d in candidates if not any(p in candidates for p in d.parents)]
    return sorted(jobs, key=lambda d: _job_order(d.relative_to(sweep_dir)))


def _read_yaml(path: Path) -> Any:
    return OmegaConf.to_container(OmegaConf.load(path), resolve=False)


def _checkpoint_selection(job_dir: Path) -> tuple[str | None, str | None]:
    """(monitor, mode) of the job's ModelCheckpoint from its saved config, when readable."""
    try:
        config = _read_yaml(job_dir / CONFIG_FILE)
        checkpoint = config["callbacks"]["model_checkpoint"]
        return checkpoint.get("monitor"), checkpoint.get("mode")
    except Exception:  # no or foreign .hydra/config.yaml: fall back to metrics.json / defaults
        return None, None


def _normalise_metrics(raw: dict[str, Any], task: str | None) -> dict[str, float]:
    """val/test loss, acc, precision, recall, f1, auroc; macro averages for 3-class tasks."""
    out: dict[str, float] = {}
    for split in SPLITS:
        for name in METRICS:
            source = THREE_CLASS_NAMES.get(name, name) if task in THREE_CLASS_TASKS else name
            value = raw.get(f"{split}/{source}")
            if isinstance(value, (int, float)):
                out[f"{split}/{name}"] = float(value)
    return out


def _cascade_epochs(job_dir: Path, result: dict[str, Any]) -> float | None:
    """Epochs trained by a cascade: the sum over its stages (read from their metrics.json)."""
    total = 0.0
    for info in (result.get("stages") or {}).values():
        stage_dir = job_dir / Path(str(info.get("run_dir") or "")).name
        try:
            epochs = json.loads((stage_dir / METRICS_FILE).read_text()).get("epochs_trained")
        except (OSError, ValueError):
            return None
        if epochs is None:
            return None
        total += epochs
    return total or None


def read_job(job_dir: Path) -> Job:
    """A job from its folder; a missing or unreadable metrics.json makes a failed job."""
    job_dir = Path(job_dir)
    metrics_path = job_dir / METRICS_FILE
    overrides: list[str] = []
    if (job_dir / OVERRIDES_FILE).is_file():
        try:
            overrides = [str(o) for o in _read_yaml(job_dir / OVERRIDES_FILE) or []]
        except Exception as error:
            return Job(job_dir, [], "failed", f"unreadable {OVERRIDES_FILE}: {error}")
    if not metrics_path.is_file():
        reason = f"no {METRICS_FILE}: the job crashed before writing it, or is still running"
        return Job(job_dir, overrides, "failed", reason, seed=_seed_of(overrides))
    try:
        result = json.loads(metrics_path.read_text())
        if not isinstance(result, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as error:
        reason = f"unreadable {metrics_path.name}: {error}"
        return Job(job_dir, overrides, "failed", reason, seed=_seed_of(overrides))
    overrides = [str(o) for o in result.get("overrides") or overrides]
    task = result.get("task")
    raw = {k: v for k, v in (result.get("metrics") or {}).items() if isinstance(v, (int, float))}
    monitor, mode = _checkpoint_selection(job_dir)
    status = result.get("status") or "failed"
    reason = result.get("reason")
    if status == "running":
        status, reason = "failed", "metrics.json says running: the job died or is still running"
    epochs = result.get("epochs_trained")
    if task == "cascade":
        epochs = _cascade_epochs(job_dir, result)
    return Job(
        run_dir=job_dir,
        overrides=overrides,
        status=status,
        reason=reason,
        task=task,
        seed=result.get("seed", _seed_of(overrides)),
        metrics=_normalise_metrics(raw, task),
        raw_metrics=raw,
        monitor=result.get("monitor") or monitor,
        mode=mode,
        epochs=epochs,
        best_epoch=result.get("best_epoch"),
        wall_time_s=result.get("wall_time_s"),
    )


def collect_jobs(sweep_dirs: Iterable[str | Path]) -> list[Job]:
    """Every job under the sweep dirs, each job folder once, in sweep then job-number order."""
    jobs: list[Job] = []
    seen: set[Path] = set()
    for sweep_dir in map(Path, sweep_dirs):
        if not sweep_dir.is_dir():
            raise TablesError(f"sweep dir {sweep_dir} does not exist or is not a folder")
        job_dirs = find_job_dirs(sweep_dir)
        if not job_dirs:
            raise TablesError(
                f"no job found under {sweep_dir}: expected job folders holding {METRICS_FILE} "
                f"or {OVERRIDES_FILE} (is this a Hydra multirun dir?)"
            )
        found = []
        for job_dir in job_dirs:
            if job_dir.resolve() not in seen:
                seen.add(job_dir.resolve())
                found.append(read_job(job_dir))
        jobs += add_unrun_jobs(sweep_dir, found)
    return jobs


# -- grouping ------------------------------------------------------------------------------
def _canonical(value: str) -> str:
    """1e-3 and 0.001 are one value; strings stay as written."""
    try:
        return str(int(value))
    except ValueError:
        pass
    try:
        return repr(float(value))
    except ValueError:
        return value


def parse_override(override: str) -> tuple[str, str]:
    """``key=value`` (also ``+key=``, ``++key=``, ``~key``) -> (key, canonical value)."""
    key, sep, value = override.partition("=")
    key = key.lstrip("+")
    return key, _canonical(value) if sep else ""


def _seed_of(overrides: Sequence[str]) -> Any:
    for override in overrides:
        key, value = parse_override(override)
        if key == SEED_KEY:
            return value
    return None


def config_of(job: Job) -> dict[str, str]:
    """A job's configuration: its overrides without the seed (and the resume flag)."""
    pairs = (parse_override(o) for o in job.overrides)
    return {key: value for key, value in pairs if key not in (SEED_KEY, RESUME_KEY)}


def planned_jobs(sweep_dir: Path) -> list[list[str]] | None:
    """The overrides of every job the sweep planned, in job-number order, recomputed from the
    sweep's ``multirun.yaml`` as Hydra's basic sweeper expands it; None for other sweepers."""
    path = sweep_dir / MULTIRUN_FILE
    if not path.is_file():
        return None
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        config = OmegaConf.load(path)
        sweeper = config.hydra.sweeper
        if sweeper.get("_target_") != BASIC_SWEEPER:
            return None
        params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
        arguments = [*params, *[str(o) for o in config.hydra.overrides.task]]
        parsed = OverridesParser.create().parse_overrides(arguments)
        batches = BasicSweeper.split_arguments(parsed, None)
    except Exception:  # a foreign or edited multirun.yaml: summarise what is on disk
        return None
    return [list(job) for batch in batches for job in batch]


def add_unrun_jobs(sweep_dir: Path, jobs: list[Job]) -> list[Job]:
    """``jobs`` plus a "not run" job for each planned job that has no folder (the sweep stopped
    before it), so a summary lists every planned job."""
    planned = planned_jobs(sweep_dir)
    if planned is None:
        return jobs
    present = {_leading_number(job.run_dir.relative_to(sweep_dir).parts[0]) for job in jobs}
    out = list(jobs)
    for number, overrides in enumerate(planned):
        if number not in present:
            reason = (
                "not run: the sweep stopped before this job (rerun into the same "
                "hydra.sweep.dir with resume_sweep=true)"
            )
            run_dir = sweep_dir / f"{number} (not run)"
            out.append(Job(run_dir, overrides, "not run", reason, seed=_seed_of(overrides)))
    return sorted(out, key=lambda job: _job_order(job.run_dir.relative_to(sweep_dir)))


def job_value(job: Job, name: str) -> float | None:
    if name in ("epochs", "best_epoch", "wall_time_s"):
        value = getattr(job, name)
    else:
        value = job.metrics.get(name, job.raw_metrics.get(name))
    return float(value) if isinstance(value, (int, float)) else None


def _selection(jobs: Sequence[Job]) -> tuple[str, str]:
    """The most common checkpoint monitor among the jobs (a val metric) and its mode."""
    monitors = Counter(job.monitor for job in jobs if job.monitor)
    monitor = monitors.most_common(1)[0][0] if monitors else DEFAULT_MONITOR
    if not monitor.startswith("val/"):
        monitor = DEFAULT_MONITOR  # model selection never looks at test
    modes = Counter(job.mode for job in jobs if job.monitor == monitor and job.mode)
    default_mode = "min" if "loss" in monitor else "max"
    return monitor, modes.most_common(1)[0][0] if modes else default_mode


def _best_row(rows: Sequence[Row], monitor: str, mode: str) -> int | None:
    """Index of the best mean ``monitor``; ties go to the lower mean val/loss, then the first."""
    sign = 1.0 if mode == "max" else -1.0
    scored = []
    for index, row in enumerate(rows):
        score = row.mean_std(monitor)[0]
        if score is not None:
            loss = row.mean_std("val/loss")[0]
            scored.append((sign * score, -loss if loss is not None else float("-inf"), -index))
    return -max(scored)[2] if scored else None


def summarise(jobs: Sequence[Job], sources: Sequence[Path] = ()) -> Summary:
    """Group jobs into configuration rows and mark the best row by the checkpoints' val metric."""
    rows: dict[tuple, Row] = {}
    for job in jobs:
        config = config_of(job)
        identity = tuple(sorted(config.items()))
        rows.setdefault(identity, Row(config, [])).jobs.append(job)
    row_list = list(rows.values())
    all_keys: list[str] = []
    for row in row_list:
        all_keys += [k for k in row.config if k not in all_keys]
    varying = [k for k in all_keys if len({row.config.get(k) for row in row_list}) > 1]
    monitor, mode = _selection(jobs)
    best = _best_row(row_list, monitor, mode)
    return Summary(row_list, varying or all_keys, monitor, mode, best, [Path(s) for s in sources])


def summarise_sweeps(sweep_dirs: Sequence[str | Path]) -> Summary:
    """Read every job under the sweep dirs and summarise them together."""
    return summarise(collect_jobs(sweep_dirs), sources=[Path(d) for d in sweep_dirs])


# -- writing ---------------------------------------------------------------------------------
STAT_COLUMNS = [f"{split}/{name}" for split in SPLITS for name in METRICS]
RUN_COLUMNS = ("epochs", "best_epoch", "wall_time_s")


def csv_header(summary: Summary) -> list[str]:
    header = [*summary.keys, "seeds", "n_jobs", "n_ok", "status", "best"]
    for name in STAT_COLUMNS:
        header += [f"{name}_mean", f"{name}_std"]
    header += [f"{name}_mean" for name in RUN_COLUMNS]
    return [*header, "reason", "job_dirs"]


def write_csv(summary: Summary, path: Path) -> Path:
    """summary.csv: one row per configuration, means and stds in separate columns."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(csv_header(summary))
        for index, row in enumerate(summary.rows):
            line: list[Any] = [row.config.get(key, "") for key in summary.keys]
            line += [";".join(row.seeds), len(row.jobs), row.n_ok, row.status]
            line.append("best" if index == summary.best else "")
            for name in STAT_COLUMNS:
                mean, std = row.mean_std(name)
                line += [_num(mean), _num(std)]
            line += [_num(row.mean_std(name)[0]) for name in RUN_COLUMNS]
            line += [" | ".join(row.reasons()), ";".join(str(j.run_dir) for j in row.jobs)]
            writer.writerow(line)
    return path


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _pm(mean: float | None, std: float | None, digits: int = 4) -> str:
    if mean is None:
        return "–"
    if std is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _short(text: str, width: int = REASON_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def to_markdown(summary: Summary) -> str:
    """summary.md: the table (mean ± std over seeds), the best row marked, then failures."""
    header = ["best", *summary.keys, "seeds"]
    header += [f"{split} {name}" for split in SPLITS for name in METRICS]
    header += ["epochs", "wall time (s)", "status"]
    lines = [
        "# Sweep summary",
        "",
        "Sweep dirs: " + ", ".join(f"`{s}`" for s in summary.sources),
        "",
        f"{len(summary.rows)} configurations, {summary.n_jobs} jobs ({summary.n_failed} failed "
        f"or not run). "
        "Mean ± sample std over seeds (successful jobs only). "
        f"★ = best mean `{summary.monitor}` ({summary.mode}), the validation metric the "
        "checkpoints select on; test never picks. Rows of 3-class tasks (cascade, three_class): "
        "precision, recall and F1 are macro averages; a cascade has no loss. Epochs: epochs "
        "trained (a cascade: both stages).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for index, row in enumerate(summary.rows):
        cells = ["★" if index == summary.best else ""]
        cells += [_cell(row.config.get(key, "")) for key in summary.keys]
        cells.append(f"{row.n_ok}/{len(row.jobs)}")
        cells += [_pm(*row.mean_std(name)) for name in STAT_COLUMNS]
        epochs = row.mean_std("epochs")[0]
        cells.append("–" if epochs is None else f"{epochs:g}")
        cells.append(_pm(*row.mean_std("wall_time_s"), digits=0))
        status = row.status
        if row.status != "ok":
            status += ": " + _cell(_short(row.reasons()[0]))
        cells.append(status)
        lines.append("| " + " | ".join(cells) + " |")
    failed = [job for row in summary.rows for job in row.jobs if not job.ok]
    if failed:
        lines += ["", "## Failed and not-run jobs", ""]
        lines += [f"- `{job.run_dir}`: {_cell(job.reason or 'no reason given')}" for job in failed]
    return "\n".join(lines) + "\n"


def write_summary(summary: Summary, out_dir: str | Path) -> tuple[Path, Path]:
    """Write summary.csv and summary.md into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = write_csv(summary, out / SUMMARY_CSV)
    md_path = out / SUMMARY_MD
    md_path.write_text(to_markdown(summary))
    return csv_path, md_path


# -- plot ------------------------------------------------------------------------------------
def rows_by_param(summary: Summary, param: str) -> list[tuple[str, Row]]:
    """(value, row) per value of the swept ``param``, numbers in ascending order.

    Rows lacking ``param`` (a job whose overrides were unreadable) are left out. Raises
    TablesError when ``param`` is not an override of the jobs, or when another override varies
    too (a row per value would then not be one configuration).
    """
    rows = [row for row in summary.rows if param in row.config]
    if not rows:
        swept = ", ".join(summary.keys) or "none"
        raise TablesError(f"no job has the override {param} (the sweep's keys: {swept})")
    others = {key for row in rows for key in row.config if key != param}
    varying = sorted(k for k in others if len({row.config.get(k) for row in rows}) > 1)
    if varying:
        raise TablesError(
            f"{param} is not the only override that varies (also {', '.join(varying)}): "
            "plot a sweep of one parameter, or summarise its configurations separately"
        )
    pairs = [(row.config[param], row) for row in rows]
    try:
        return sorted(pairs, key=lambda pair: float(pair[0]))
    except ValueError:  # not all numbers: categories in job order
        return pairs


def sweep_name(summary: Summary) -> str:
    """The jobs' common ``sweep=`` override, else the sweep dirs' names."""
    names = {row.config.get(SWEEP_KEY) for row in summary.rows}
    if len(names) == 1 and None not in names:
        return str(names.pop())
    return ", ".join(f"{s.parent.name}/{s.name}" for s in summary.sources) or "sweep"


def plot_file_name(param: str) -> str:
    """``sweep_optimizer_lr.png`` for optimizer.lr: dots, slashes (any non-word character) as _."""
    return "sweep_" + re.sub(r"[^\w-]", "_", param.lstrip("+~")) + ".png"


def write_sweep_plot(summary: Summary, param: str, out_dir: str | Path) -> Path:
    """``sweep_<param>.png`` in ``out_dir``: val and test accuracy against ``param``."""
    from xray_lightning.plots.io import save_figure
    from xray_lightning.plots.sweep import sweep_figure

    pairs = rows_by_param(summary, param)
    values = [value for value, _ in pairs]
    series = {
        f"{metric.split('/')[0]} accuracy": [row.mean_std(metric) for _, row in pairs]
        for metric in PLOT_METRICS
    }
    counts = [(row.n_ok, len(row.jobs)) for _, row in pairs]
    seeds = sorted({len(row.jobs) for _, row in pairs})
    per_value = str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
    where = f" ({summary.sources[0].name})" if len(summary.sources) == 1 else ""
    title = f"sweep {sweep_name(summary)}{where}: mean ± std over {per_value} seeds per value"
    fig = sweep_figure(values, series, counts, param=param, title=title)
    return save_figure(fig, Path(out_dir) / plot_file_name(param))


# -- CLI -------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m xray_lightning.tables",
        description="Rebuild a sweep's summary.csv/summary.md, or merge several sweeps into one.",
    )
    parser.add_argument("sweep_dirs", nargs="+", type=Path, metavar="SWEEP_DIR")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for summary.csv/summary.md (default: the sweep dir when only one is given; "
        "with several and no --out the merged table is only printed)",
    )
    parser.add_argument(
        "--plot",
        metavar="PARAM",
        default=None,
        help="also write sweep_<PARAM>.png (dots and slashes as _): val and test accuracy, "
        "mean ± std over seeds, against the swept override PARAM (e.g. optimizer.lr)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = summarise_sweeps(args.sweep_dirs)
        if args.plot:
            rows_by_param(summary, args.plot)  # a bad PARAM fails before anything is written
    except XrayLightningError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(to_markdown(summary), end="")
    out = args.out or (args.sweep_dirs[0] if len(args.sweep_dirs) == 1 else None)
    if out is None:
        print("several sweep dirs: pass --out DIR to write summary.csv/.md", file=sys.stderr)
        return 0
    csv_path, md_path = write_summary(summary, out)
    print(f"wrote {csv_path} and {md_path}", file=sys.stderr)
    if args.plot:
        print(f"wrote {write_sweep_plot(summary, args.plot, out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_cli(main)
