"""evaluate CLI: re-measures a cascade run exactly as its metrics.json recorded it; exports slim
checkpoints + thresholds.json that evaluate to the same numbers; clear errors and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_plots import tiny_cascade

from xray_lightning import evaluate, runs
from xray_lightning.evaluate import main
from xray_lightning.runs import cascade_checkpoints


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tiny_cascade(tmp_path_factory)


@pytest.fixture(scope="module")
def run_result(trained: tuple[Path, Path]) -> dict:
    run_dir, root = trained
    return evaluate.evaluate(
        evaluate.build_parser().parse_args(["--run", str(run_dir), "--data-root", str(root)])
    )


def test_run_is_re_measured_as_recorded(trained: tuple[Path, Path], run_result: dict) -> None:
    run_dir, _ = trained
    recorded = json.loads((run_dir / "metrics.json").read_text())
    assert run_result["thresholds"] == recorded["thresholds"]
    assert run_result["thresholds_from"] == "metrics.json"
    assert set(run_result["images"]) == {"val", "test"}
    for key in ("test/acc", "test/f1_macro", "test/stage1/recall", "val/stage2/acc"):
        assert run_result["metrics"][key] == pytest.approx(recorded["metrics"][key], abs=1e-6)
    assert run_result["confusion"]["test"] == recorded["confusion"]["test"]
    assert run_result["recorded_max_abs_diff"] < 1e-4
    assert sum(map(sum, run_result["confusion"]["test"])) == run_result["images"]["test"]


def test_text_report_names_every_number(
    trained: tuple[Path, Path], run_result: dict, capsys: pytest.CaptureFixture
) -> None:
    run_dir, root = trained
    assert main(["--run", str(run_dir), "--data-root", str(root)]) == 0
    out = capsys.readouterr().out
    metrics = run_result["metrics"]
    assert f"3-class accuracy {metrics['test/acc']:.4f}" in out
    assert f"macro F1 {metrics['test/f1_macro']:.4f}" in out
    assert f"t1 {run_result['thresholds']['t1']:.4f}" in out
    for name in ("normal", "non-covid", "covid"):
        assert f"\n  {name:<10} " in out
    assert f"recall {metrics['test/stage1/recall']:.4f}" in out
    assert f"truly infected images only): accuracy {metrics['test/stage2/acc']:.4f}" in out
    assert out.index("test (") < out.index("val (")
    assert "matches the run's metrics.json" in out


def test_export_then_evaluate_the_shipped_files(
    trained: tuple[Path, Path],
    run_result: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    run_dir, root = trained
    target = tmp_path / "best"
    assert main(["--export", str(run_dir), "--to", str(target)]) == 0
    stage1, _, thresholds = cascade_checkpoints(run_dir)
    slim = target / "stage1.ckpt"
    assert slim.stat().st_size < stage1.stat().st_size  # no optimizer state
    saved = json.loads((target / "thresholds.json").read_text())
    assert {k: saved[k] for k in ("t1", "t2")} == thresholds
    assert saved["source_run"] == str(run_dir.resolve())
    assert saved["metrics"]["test/acc"] == pytest.approx(run_result["metrics"]["test/acc"])
    capsys.readouterr()
    # a second export does not overwrite the shipped files silently
    assert main(["--export", str(run_dir), "--to", str(target)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["--export", str(run_dir), "--to", str(target), "--force"]) == 0
    capsys.readouterr()
    # the default checkpoints are the shipped folder; thresholds come from thresholds.json
    monkeypatch.setattr(runs, "SHIPPED", target)
    assert main(["--data-root", str(root), "--json"]) == 0
    shipped = json.loads(capsys.readouterr().out)
    assert shipped["thresholds_from"] == "thresholds.json"
    assert shipped["thresholds"] == run_result["thresholds"]
    for key, value in run_result["metrics"].items():
        assert shipped["metrics"][key] == pytest.approx(value, abs=1e-6, nan_ok=True), key
    # --t1 overrides the saved threshold and changes the decisions' source
    assert main(["--data-root", str(root), "--json", "--t1", "0.999"]) == 0
    moved = json.loads(capsys.readouterr().out)
    assert moved["thresholds"]["t1"] == 0.999 and moved["thresholds_from"] == "command line"
    assert moved["metrics"]["test/stage1/recall"] <= shipped["metrics"]["test/stage1/recall"]


def test_missing_default_checkpoints_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(runs, "SHIPPED", tmp_path / "best")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint not found: {tmp_path / 'best' / 'stage1.ckpt'}" in err
    assert "--export RUN_DIR" in err and "Traceback" not in err


def test_bad_checkpoints_and_arguments_exit_2(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run_dir, root = trained
    stage1, stage2, _ = cascade_checkpoints(run_dir)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    assert main(["--stage1", str(junk), "--stage2", str(stage2), "--data-root", str(root)]) == 2
    assert "not a readable" in capsys.readouterr().err
    swapped = ["--stage1", str(stage2), "--stage2", str(stage1), "--data-root", str(root)]
    assert main(swapped) == 2
    assert "normal_vs_infected checkpoint was expected" in capsys.readouterr().err
    assert main(["--run", str(run_dir / "stage1")]) == 2
    assert "needs a cascade run dir" in capsys.readouterr().err
    bad_thresholds = tmp_path / "thresholds.json"
    bad_thresholds.write_text('{"t1": 2, "t2": 0.5}')
    (tmp_path / "stage1.ckpt").write_bytes(stage1.read_bytes())
    assert main(["--stage1", str(tmp_path / "stage1.ckpt"), "--stage2", str(stage2)]) == 2
    assert "'t1' must be a number in (0, 1)" in capsys.readouterr().err
    for argv in (["--stage1", str(stage1)], ["--export", str(run_dir), "--t1", "0.3"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2


@pytest.mark.integration
def test_shipped_model_re_measures_as_recorded(
    real_root: Path, capsys: pytest.CaptureFixture
) -> None:
    """`make evaluate`: experiments/best on the real test/val splits = its thresholds.json."""
    recorded = json.loads((runs.SHIPPED / "thresholds.json").read_text())["metrics"]
    assert main(["--data-root", str(real_root), "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)["metrics"]
    for key in ("test/acc", "test/stage1/acc", "test/stage1/recall", "test/stage2/acc", "val/acc"):
        assert measured[key] == pytest.approx(recorded[key], abs=1e-6), key


def test_a_progress_bar_over_val_and_test_when_stderr_is_a_terminal(
    trained: tuple[Path, Path], capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from xray_lightning import progress

    run_dir, root = trained
    monkeypatch.setattr(progress, "_is_terminal", lambda stream: stream is sys.stderr)
    assert main(["--run", str(run_dir), "--data-root", str(root)]) == 0
    captured = capsys.readouterr()
    assert "labelling test and val" in captured.err and "img" in captured.err
    assert "labelling" not in captured.out  # the report itself is unchanged
