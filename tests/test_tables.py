"""Sweep summaries from hand-written job folders: grouping, mean ± std, failures, best row, CLI."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xray_lightning.tables import (
    SUMMARY_CSV,
    SUMMARY_MD,
    TablesError,
    collect_jobs,
    main,
    summarise,
    summarise_sweeps,
    write_summary,
)

BINARY = ("loss", "acc", "precision", "recall", "f1", "auroc")


def write_job(
    job_dir: Path,
    overrides: list[str],
    metrics: dict[str, float] | None = None,
    status: str = "ok",
    reason: str | None = None,
    task: str = "normal_vs_infected",
    **extra: Any,
) -> Path:
    """A job folder as a Hydra multirun leaves it: .hydra/overrides.yaml and metrics.json."""
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    seed = next((int(o.split("=")[1]) for o in overrides if o.startswith("seed=")), 42)
    result = {
        "status": status,
        "reason": reason,
        "task": task,
        "seed": seed,
        "overrides": overrides,
        "monitor": "val/acc" if task != "cascade" else None,
        "epochs_trained": 3,
        "best_epoch": 1,
        "wall_time_s": 10.0,
        **extra,
    }
    if metrics is not None:
        result["metrics"] = metrics
    (job_dir / "metrics.json").write_text(json.dumps(result))
    return job_dir


def binary_metrics(val_acc: float, test_acc: float, val_loss: float = 0.5) -> dict[str, float]:
    metrics = {f"{split}/{name}": 0.5 for split in ("val", "test") for name in BINARY}
    metrics.update({"val/acc": val_acc, "test/acc": test_acc, "val/loss": val_loss})
    return metrics


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_rows_group_seeds_with_mean_and_std(tmp_path: Path) -> None:
    accs = {"sgd": [0.70, 0.74, 0.78], "adam": [0.90, 0.92, 0.91]}
    num = 0
    for optimizer, values in accs.items():
        for seed, acc in enumerate(values):
            overrides = [f"optimizer={optimizer}", f"seed={seed}", "sweep=optimizer"]
            write_job(tmp_path / f"{num}_x", overrides, binary_metrics(acc, acc - 0.1))
            num += 1
    summary = summarise_sweeps([tmp_path])
    assert summary.keys == ["optimizer"]  # sweep= is the same for every job
    assert [row.config["optimizer"] for row in summary.rows] == ["sgd", "adam"]
    for row in summary.rows:
        values = accs[row.config["optimizer"]]
        mean, std = row.mean_std("val/acc")
        assert mean == pytest.approx(statistics.fmean(values))
        assert std == pytest.approx(statistics.stdev(values))
        assert row.seeds == ["0", "1", "2"]
    write_summary(summary, tmp_path)
    rows = read_csv(tmp_path / SUMMARY_CSV)
    assert len(rows) == 2
    assert float(rows[1]["val/acc_mean"]) == pytest.approx(statistics.fmean(accs["adam"]))
    assert float(rows[0]["val/acc_std"]) == pytest.approx(statistics.stdev(accs["sgd"]), rel=1e-5)
    assert [r["best"] for r in rows] == ["", "best"]
    markdown = (tmp_path / SUMMARY_MD).read_text()
    assert "± " in markdown and "★" in markdown


def test_best_row_is_chosen_on_val_never_on_test(tmp_path: Path) -> None:
    write_job(tmp_path / "0_a", ["loss=bce", "seed=0"], binary_metrics(val_acc=0.9, test_acc=0.6))
    write_job(tmp_path / "1_b", ["loss=ce", "seed=0"], binary_metrics(val_acc=0.8, test_acc=0.99))
    summary = summarise_sweeps([tmp_path])
    assert summary.monitor == "val/acc"
    assert summary.rows[summary.best].config["loss"] == "bce"


def test_best_row_follows_a_loss_monitor_downwards(tmp_path: Path) -> None:
    for num, (loss, val_loss) in enumerate([("bce", 0.2), ("ce", 0.4)]):
        write_job(
            tmp_path / f"{num}_x",
            [f"loss={loss}", "seed=0"],
            binary_metrics(0.5 + num * 0.3, 0.5, val_loss=val_loss),
            monitor="val/loss",
        )
    summary = summarise_sweeps([tmp_path])
    assert (summary.monitor, summary.mode) == ("val/loss", "min")
    assert summary.rows[summary.best].config["loss"] == "bce"


def test_failed_jobs_are_rows_with_their_reason(tmp_path: Path) -> None:
    nan = "training loss became nan at epoch 0, global step 3"
    write_job(tmp_path / "0_a", ["optimizer.lr=0.5", "seed=0"], {}, "failed", nan)
    write_job(tmp_path / "1_b", ["optimizer.lr=0.5", "seed=1"], binary_metrics(0.6, 0.6))
    write_job(tmp_path / "2_c", ["optimizer.lr=1e-3", "seed=0"], binary_metrics(0.8, 0.7))
    crashed = tmp_path / "3_d" / ".hydra"  # crashed before writing metrics.json
    crashed.mkdir(parents=True)
    (crashed / "overrides.yaml").write_text("- optimizer.lr=7\n- seed=0\n")
    broken = write_job(tmp_path / "4_e", ["optimizer.lr=9", "seed=0"], {})
    (broken / "metrics.json").write_text("{not json")
    summary = summarise_sweeps([tmp_path])
    by_lr = {row.config["optimizer.lr"]: row for row in summary.rows}
    assert set(by_lr) == {"0.5", "0.001", "7", "9"}
    assert by_lr["0.5"].status == "partial"
    assert by_lr["0.5"].mean_std("val/acc") == (pytest.approx(0.6), None)
    assert nan in by_lr["0.5"].reasons()[0]
    assert by_lr["7"].status == "failed" and "no metrics.json" in by_lr["7"].reasons()[0]
    assert by_lr["9"].status == "failed" and "unreadable" in by_lr["9"].reasons()[0]
    assert summary.rows[summary.best].config["optimizer.lr"] == "0.001"
    write_summary(summary, tmp_path)
    rows = {r["optimizer.lr"]: r for r in read_csv(tmp_path / SUMMARY_CSV)}
    assert rows["7"]["status"] == "failed" and rows["7"]["val/acc_mean"] == ""
    assert nan in rows["0.5"]["reason"]
    assert "## Failed and not-run jobs" in (tmp_path / SUMMARY_MD).read_text()


def test_three_class_rows_use_macro_metrics_and_cascade_stages_are_not_jobs(
    tmp_path: Path,
) -> None:
    macro = {
        f"{split}/{name}": value
        for split in ("val", "test")
        for name, value in [("acc", 0.8), ("f1_macro", 0.7), ("precision_macro", 0.65)]
    }
    macro["test/stage1/recall"] = 0.99
    job = write_job(
        tmp_path / "0_cascade",
        ["task=cascade", "seed=0"],
        macro,
        task="cascade",
        stages={
            "normal_vs_infected": {"run_dir": "/elsewhere/0_cascade/stage1"},
            "covid_vs_noncovid": {"run_dir": "/elsewhere/0_cascade/stage2"},
        },
    )
    for stage, epochs in (("stage1", 3), ("stage2", 2)):
        write_job(job / stage, [], binary_metrics(0.1, 0.1), epochs_trained=epochs)
    three = dict(macro, **{"val/loss": 0.9, "val/auroc": 0.85, "val/f1_macro": 0.6})
    write_job(tmp_path / "1_three", ["task=three_class", "seed=0"], three, task="three_class")
    jobs = collect_jobs([tmp_path])
    assert [j.run_dir.name for j in jobs] == ["0_cascade", "1_three"]  # stage dirs belong to it
    summary = summarise(jobs)
    cascade, three_class = summary.rows
    assert cascade.mean_std("test/f1")[0] == pytest.approx(0.7)
    assert cascade.mean_std("test/precision")[0] == pytest.approx(0.65)
    assert cascade.mean_std("val/loss")[0] is None
    assert cascade.mean_std("epochs")[0] == 5  # both stages
    assert three_class.mean_std("val/f1")[0] == pytest.approx(0.6)
    assert three_class.mean_std("val/auroc")[0] == pytest.approx(0.85)


def test_equal_values_written_differently_are_one_configuration(tmp_path: Path) -> None:
    write_job(tmp_path / "a" / "0_x", ["optimizer.lr=1e-3", "seed=0"], binary_metrics(0.7, 0.7))
    write_job(tmp_path / "b" / "0_x", ["optimizer.lr=0.001", "seed=1"], binary_metrics(0.9, 0.7))
    summary = summarise_sweeps([tmp_path / "a", tmp_path / "b"])
    assert len(summary.rows) == 1
    assert summary.rows[0].mean_std("val/acc")[0] == pytest.approx(0.8)


def test_jobs_are_in_job_number_order(tmp_path: Path) -> None:
    for num in (10, 2, 1):
        write_job(tmp_path / f"{num}_lr", [f"optimizer.lr={num}", "seed=0"], binary_metrics(0, 0))
    rows = summarise_sweeps([tmp_path]).rows
    assert [row.config["optimizer.lr"] for row in rows] == ["1", "2", "10"]


def test_cli_merges_sweeps_and_rebuilds_one(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    first, second, out = tmp_path / "s1", tmp_path / "s2", tmp_path / "merged"
    write_job(first / "0_a", ["loss=bce", "seed=0"], binary_metrics(0.7, 0.7))
    write_job(first / "1_a", ["loss=bce", "seed=1"], binary_metrics(0.8, 0.7))
    write_job(second / "0_a", ["loss=bce", "seed=2"], binary_metrics(0.9, 0.7))
    write_job(second / "1_b", ["loss=hinge", "seed=0"], binary_metrics(0.5, 0.7))
    assert main([str(first), str(second), "--out", str(out)]) == 0
    rows = read_csv(out / SUMMARY_CSV)
    assert [(r["loss"], r["seeds"]) for r in rows] == [("bce", "0;1;2"), ("hinge", "0")]
    assert float(rows[0]["val/acc_mean"]) == pytest.approx(0.8)
    assert main([str(first)]) == 0
    assert (first / SUMMARY_CSV).is_file() and (first / SUMMARY_MD).is_file()
    assert "| bce |" in capsys.readouterr().out


def test_cli_names_a_missing_or_empty_sweep_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main([str(tmp_path / "nope")]) == 2
    assert "nope does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(TablesError, match="no job found under"):
        summarise_sweeps([tmp_path / "empty"])


# -- --plot PARAM: sweep_<param>.png -----------------------------------------------------------
def _lr_sweep(sweep: Path, values: dict[str, list[float | None]]) -> None:
    """One job per (value, seed); None: a seed whose training loss became NaN."""
    num = 0
    for value, accs in values.items():
        for seed, acc in enumerate(accs):
            overrides = [f"optimizer.lr={value}", f"seed={seed}", "sweep=lr"]
            if acc is None:
                write_job(sweep / f"{num}_x", overrides, {}, "failed", "training loss became nan")
            else:
                write_job(sweep / f"{num}_x", overrides, binary_metrics(acc, acc - 0.2))
            num += 1


def _figure_axes(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Capture the Axes of every figure the tables CLI saves (the figure itself is closed)."""
    import xray_lightning.plots.io as plots_io

    saved: list[Any] = []
    save = plots_io.save_figure

    def spy(fig: Any, path: Any, **kwargs: Any) -> Path:
        saved.append(fig.axes[0])
        return save(fig, path, **kwargs)

    monkeypatch.setattr(plots_io, "save_figure", spy)
    return saved


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        image.verify()  # raises on a truncated or non-PNG file
        assert image.format == "PNG"
        return image.size


def test_plot_writes_a_png_of_val_and_test_accuracy_per_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xray_lightning.plots.sweep import FAILED_LABEL

    axes = _figure_axes(monkeypatch)
    sweep, out = tmp_path / "sweep", tmp_path / "out"
    values = {"1e-4": [0.6, 0.7], "0.01": [0.9, 0.8], "0.001": [0.8, 0.8], "0.5": [None, None]}
    _lr_sweep(sweep, values)
    assert main([str(sweep), "--out", str(out), "--plot", "optimizer.lr"]) == 0
    png = out / "sweep_optimizer_lr.png"
    width, height = _image_size(png)
    assert width > 300 and height > 200
    assert (out / SUMMARY_CSV).is_file() and (out / SUMMARY_MD).is_file()
    (ax,) = axes
    assert ax.get_xscale() == "log"  # 1e-4 .. 0.5 spans > 20x
    assert ax.get_ylabel() == "accuracy"
    assert "sweep lr" in ax.get_title()
    series = {c.get_label(): c for c in ax.containers}  # the error-bar series
    assert set(series) == {"val accuracy", "test accuracy"}
    val_line = series["val accuracy"].lines[0]
    assert list(val_line.get_xdata()) == [1e-4, 1e-3, 1e-2, 0.5]  # numeric order, not job order
    val_means = list(val_line.get_ydata())
    assert val_means[:3] == pytest.approx([0.65, 0.8, 0.85])
    assert np.isnan(val_means[3])  # the failed value has no point
    test_means = list(series["test accuracy"].lines[0].get_ydata())
    assert test_means[:3] == pytest.approx([0.45, 0.6, 0.65])
    (failed,) = [line for line in ax.get_lines() if line.get_label() == FAILED_LABEL]
    assert list(failed.get_xdata()) == [0.5] and failed.get_marker() == "x"
    assert FAILED_LABEL in [t.get_text() for t in ax.get_legend().get_texts()]


def test_plot_of_a_non_numeric_param_is_categorical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    axes = _figure_axes(monkeypatch)
    runs = [("sgd", 0.7), ("adam", 0.9), ("sgd", 0.8), ("rmsprop", None)]
    for num, (optimizer, acc) in enumerate(runs):
        overrides = [f"optimizer={optimizer}", f"seed={num}"]
        if acc is None:
            write_job(tmp_path / f"{num}_x", overrides, {}, "failed", "training loss became nan")
        else:
            write_job(tmp_path / f"{num}_x", overrides, binary_metrics(acc, acc - 0.1))
    assert main([str(tmp_path), "--plot", "optimizer"]) == 0
    _image_size(tmp_path / "sweep_optimizer.png")
    (ax,) = axes
    assert ax.get_xscale() == "linear"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["sgd", "adam", "rmsprop"]  # job order
    val = next(c for c in ax.containers if c.get_label() == "val accuracy").lines[0]
    assert list(val.get_ydata())[:2] == pytest.approx([0.75, 0.9])
    assert np.isnan(val.get_ydata()[2])


def test_plot_of_only_failed_jobs_does_not_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xray_lightning.plots.sweep import FAILED_LABEL

    axes = _figure_axes(monkeypatch)
    _lr_sweep(tmp_path, {"0.5": [None, None], "1": [None]})
    assert main([str(tmp_path), "--plot", "optimizer.lr"]) == 0
    _image_size(tmp_path / "sweep_optimizer_lr.png")
    (failed,) = [line for line in axes[0].get_lines() if line.get_label() == FAILED_LABEL]
    assert list(failed.get_xdata()) == [0.5, 1.0]
    assert axes[0].get_xscale() == "linear"  # 0.5 .. 1 spans < 20x
    assert axes[0].get_ylim()[1] == pytest.approx(1.0)  # an accuracy range, not matplotlib's ±0.06


def test_plot_of_an_unknown_or_not_alone_param_fails_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    sweep, out = tmp_path / "sweep", tmp_path / "out"
    write_job(sweep / "0_a", ["optimizer.lr=0.1", "loss=bce", "seed=0"], binary_metrics(0.7, 0.7))
    write_job(sweep / "1_b", ["optimizer.lr=0.2", "loss=ce", "seed=0"], binary_metrics(0.8, 0.7))
    assert main([str(sweep), "--out", str(out), "--plot", "net.dropout"]) == 2
    assert "no job has the override net.dropout" in capsys.readouterr().err
    assert main([str(sweep), "--out", str(out), "--plot", "optimizer.lr"]) == 2
    assert "also loss" in capsys.readouterr().err
    assert not out.exists()
