"""Speed benchmark (xray_lightning.bench.train): both paths run on synthetic data, the summary
is the median over repeats, memory and load are recorded, bad input gets one clear error.
The data-path benchmark (xray_lightning.bench.data) reports median rates too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from xray_lightning.bench import data as bench_data
from xray_lightning.bench.machine import load_average
from xray_lightning.bench.ours import BatchTimer
from xray_lightning.bench.train import BenchError, find_root, main, markdown, summarize
from xray_lightning.data import XrayDataModule
from xray_lightning.hardware import cpu_info, resolve_precision

SMALL = ["--models", "cnn", "--batch-size", "8", "--eval-batch-size", "16", "--repeats", "1"]
SMALL += ["--warmup-batches", "1", "--infer-batches", "1", "--naive-batches", "1"]


def run_bench(root: Path, out: Path, *extra: str) -> dict:
    assert main(["--root", str(root), *SMALL, "--out", str(out), *extra]) == 0
    return json.loads(out.read_text())


def test_both_paths_are_timed_with_memory_and_load(
    synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    result = run_bench(synthetic_root, tmp_path / "bench.json", "--limit-batches", "2")
    kinds = {(r["path"], r["kind"]) for r in result["records"]}
    assert kinds == {
        ("ours", "train"),
        ("ours", "infer"),
        ("naive_w0", "train"),
        ("naive_w0", "infer"),
    }
    for record in result["records"]:
        assert record["img_s"] > 0 and record["images"] > 0
        assert record["peak_rss_mib"] > 0
        assert len(record["load"]) == 2
    ours = next(r for r in result["records"] if r["path"] == "ours" and r["kind"] == "train")
    assert ours["images"] == 2 * 8  # two timed batches after the warm-up one
    # auto, resolved for this machine; the naive loop is plain fp32, default memory format
    assert ours["precision"] == resolve_precision("auto", "cpu")[0]
    assert isinstance(ours["channels_last"], bool)
    assert ours["train_gflop_per_image"] > 0 and ours["achieved_gflops"] > 0
    assert result["machine"]["isa"] == cpu_info().isa
    train = XrayDataModule(root=synthetic_root).split_labels("train")
    assert ours["train_images_per_epoch"] == len(train)
    row = next(r for r in result["summary"] if r["path"] == "ours")
    naive = next(r for r in result["summary"] if r["path"] == "naive_w0")
    expected = round(row["train_img_s"] / naive["train_img_s"], 2)
    assert row["train_speedup_vs_best_naive"] == pytest.approx(expected, abs=0.011)
    assert "epoch_s_est" in row  # limited batches: the epoch time is an estimate
    assert result["machine"]["cpu_cores"] >= 1 and result["machine"]["cpu"]
    assert "| cnn | ours |" in capsys.readouterr().out


def test_whole_epochs_report_a_measured_epoch_time(synthetic_root: Path, tmp_path: Path) -> None:
    result = run_bench(
        synthetic_root,
        tmp_path / "bench.json",
        *("--limit-batches", "0", "--epochs", "2", "--naive-batches", "0", "--infer-batches", "0"),
    )
    (record,) = result["records"]
    assert len(record["epoch_s"]) == 2 and all(s > 0 for s in record["epoch_s"])
    # 90 train images of stage 1 in batches of 8: 12 batches per epoch, 1 warm-up
    assert record["images"] == 2 * record["train_images_per_epoch"] - 8
    (row,) = result["summary"]
    assert row["epoch_s"] == pytest.approx(record["epoch_s"][1], abs=0.001)
    assert "epoch_s_est" not in row


def test_summary_is_the_median_over_repeats() -> None:
    def record(path: str, kind: str, img_s: float, repeat: int) -> dict:
        return {
            "model": "cnn",
            "path": path,
            "kind": kind,
            "img_s": img_s,
            "train_images_per_epoch": 4695,
            "peak_rss_mib": 100.0 + repeat,
            "load": [1.0 + repeat, 2.0],
            "repeat": repeat,
            "precision": "32-true",
            "channels_last": path == "ours",
            "train_gflop_per_image": 1.0,
            "achieved_gflops": img_s,
        }

    records = [record("ours", "train", v, i) for i, v in enumerate([300.0, 100.0, 200.0])]
    records += [record("naive_w0", "train", v, i) for i, v in enumerate([40.0, 50.0, 60.0])]
    records += [record("naive_w2", "train", v, i) for i, v in enumerate([70.0, 80.0, 90.0])]
    rows = {r["path"]: r for r in summarize(records)}
    assert rows["ours"]["train_img_s"] == 200.0
    assert rows["ours"]["train_img_s_min_max"] == [100.0, 300.0]
    assert rows["ours"]["repeats"] == 3
    assert rows["ours"]["train_speedup_vs_best_naive"] == round(200.0 / 80.0, 2)
    assert rows["ours"]["epoch_s_est"] == pytest.approx(4695 / 200.0, abs=0.001)
    assert rows["ours"]["train_peak_rss_mib"] == 102.0
    assert rows["ours"]["load_min_max"] == [1.0, 3.0]
    assert rows["ours"]["achieved_gflops"] == 200.0  # the median, like img/s
    machine = {"cpu": "x", "cpu_cores": 2, "torch": "t", "torch_threads": 2, "isa": "AVX2"}
    machine["peak_fp32"] = {"gflops": 400.0, "formula": "2 cores x 6.25 GHz x 32"}
    table = markdown(list(rows.values()), machine, 32)
    assert "x (2 cores, AVX2)" in table and "fp32 peak 400 GFLOP/s" in table
    assert "| cnn | ours | 32-true, channels_last | 200 (100–300) | 2.5x | 200 (50%) |" in table
    assert "| cnn | naive_w0 | 32-true, contiguous | 50 (40–60) | - |" in table


PEAK_MEMORY_PROBE = """
import json, time, torch
from xray_lightning.bench.machine import PeakMemory
with PeakMemory(torch.device("cpu")) as memory:
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    time.sleep(0.1)  # held a moment, as a phase holds its data
    del block
print(json.dumps({"per_phase": memory.per_phase, **memory.as_dict()}))
"""


def test_peak_memory_sees_an_allocation_inside_the_block() -> None:
    # A fresh interpreter: in the test process, memory freed (or still being freed by other
    # threads) by earlier tests can be reused by the block, so RSS need not rise above the start.
    done = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY_PROBE], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["peak_rss_mib"] >= 64
    if result["per_phase"]:
        assert result["peak_rss_added_mib"] >= 60


def test_load_average_has_three_values() -> None:
    assert len(load_average()) in (0, 3)


def test_too_few_batches_is_a_clear_error() -> None:
    timer = BatchTimer(warmup=3, device=torch.device("cpu"))
    with pytest.raises(RuntimeError, match="warm-up batches"):
        timer.result()


def test_missing_dataset_is_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(BenchError, match="no dataset at"):
        find_root(tmp_path / "nowhere", synthetic=False, workdir=tmp_path)
    monkeypatch.setenv("XRAY_DATA_ROOT", str(tmp_path / "missing"))
    assert main(["--models", "cnn", "--repeats", "1"]) == 2
    assert "XRAY_DATA_ROOT" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--batch-size", "0"],
        ["--data-on-device"],
        ["--limit-batches", "0", "--warmup-batches", "0"],
    ],
)
def test_bad_options_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_data_bench_reports_median_rates(
    synthetic_root: Path, interpolation: str, capsys: pytest.CaptureFixture
) -> None:
    """xray_lightning.bench.data: DataModule vs naive loaders, medians over repeats."""
    argv = ["--root", str(synthetic_root), "--batches", "2", "--naive-batches", "1"]
    argv += ["--batch-size", "8", "--repeats", "2", "--interpolation", interpolation, "--json"]
    assert bench_data.main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["repeats"] == 2 and result["interpolation"] == interpolation
    for key in ("datamodule_img_s", "naive_w0_img_s", "naive_w2_img_s"):
        assert result[key] > 0
    ms = 8 / result["datamodule_img_s"] * 1e3
    assert result["datamodule_ms_per_batch"] == pytest.approx(ms, abs=1e-3)
    with pytest.raises(SystemExit):
        bench_data.main(["--repeats", "0"])
