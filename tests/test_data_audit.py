"""Audit CLI: counts, duplicates within/across splits, bad files, the figure, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from xray_lightning.data.audit import audit_dataset, main
from xray_lightning.data.synthetic import DEFAULT_COUNTS
from xray_lightning.plots.distribution import class_distribution_figure
from xray_lightning.plots.io import save_figure


@pytest.fixture()
def copy_root(synthetic_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(synthetic_root, tmp_path / "ds"))


def test_clean_dataset_exit_0_with_counts_and_figure(synthetic_root, tmp_path, capsys) -> None:
    assert main([str(synthetic_root), "--out", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"] == DEFAULT_COUNTS
    assert report["imbalance"]["train"]["non-covid:covid"] == pytest.approx(40 / 30, abs=1e-3)
    assert report["bad_files"] == []
    assert report["duplicates"] == {"within_splits": [], "across_splits": []}
    figure = tmp_path / "class_distribution.png"
    assert figure.is_file() and figure.read_bytes()[:4] == b"\x89PNG"


def test_duplicates_within_and_across_splits(copy_root: Path) -> None:
    src = copy_root / "train" / "normal" / "0.jpg"
    shutil.copy(src, copy_root / "train" / "normal" / "900.jpg")
    shutil.copy(copy_root / "test" / "normal" / "1.jpg", copy_root / "val" / "normal" / "901.jpg")
    dups = audit_dataset(copy_root)["duplicates"]
    assert dups["within_splits"] == [["train/normal/0.jpg", "train/normal/900.jpg"]]
    assert dups["across_splits"] == [["test/normal/1.jpg", "val/normal/901.jpg"]]


def test_bad_files_exit_1_each_named(copy_root: Path, tmp_path, capsys) -> None:
    (copy_root / "test" / "normal" / "5.jpg").write_bytes(b"")
    (copy_root / "val" / "infected" / "covid" / "x.jpg").write_text("hello")
    assert main([str(copy_root), "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "test/normal/5.jpg: empty file" in out
    assert "val/infected/covid/x.jpg: not an image" in out
    assert "Bad files: 2" in out


def test_layout_error_exit_2(copy_root: Path, tmp_path, capsys) -> None:
    shutil.rmtree(copy_root / "train" / "normal")
    assert main([str(copy_root), "--out", str(tmp_path)]) == 2
    assert "train/normal" in capsys.readouterr().err
    assert main([str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2


def test_kaggle_layout_defaults_accept_any_size_and_mode(synthetic_kaggle_root: Path) -> None:
    report = audit_dataset(synthetic_kaggle_root)
    assert report["layout"] == "kaggle" and report["bad_files"] == []
    strict = audit_dataset(synthetic_kaggle_root, expect_size=150, expect_mode="L")
    assert len(strict["bad_files"]) == report["n_files"]


def test_plot_function_is_reusable(tmp_path: Path) -> None:
    counts = {"train": {"normal": 3, "infected": 5}, "val": {"normal": 1, "infected": 1}}
    out = save_figure(class_distribution_figure(counts, title="t"), tmp_path / "sub" / "fig.png")
    assert out.is_file() and out.stat().st_size > 1000
