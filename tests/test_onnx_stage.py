"""The ONNX Runtime path of labelling: the same probabilities as PyTorch, each network exported
once into the cache, a bad cached file replaced, and a clear message where it cannot run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_plots import tiny_cascade

from xray_lightning import onnx_stage
from xray_lightning.labeller import Labeller
from xray_lightning.predict import main
from xray_lightning.runs import cascade_checkpoints


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tiny_cascade(tmp_path_factory)


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XRAY_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnx"


def labellers(run_dir: Path, runtime: str) -> Labeller:
    stage1, stage2, thresholds = cascade_checkpoints(run_dir)
    return Labeller.from_checkpoints(stage1, stage2, **thresholds, runtime=runtime)


def test_onnx_runtime_gives_the_torch_probabilities(
    trained: tuple[Path, Path], cache: Path
) -> None:
    run_dir, _ = trained
    onnx, plain = labellers(run_dir, "onnx"), labellers(run_dir, "torch")
    assert onnx.stage1.onnx is not None and plain.stage1.onnx is None
    assert len(list(cache.glob("*.onnx"))) == 2  # one file per stage
    for batch in (1, 5):  # the exported graph takes any batch size
        images = torch.randn(batch, 1, 64, 64, generator=torch.Generator().manual_seed(batch))
        for a, b in zip(onnx.predict_proba(images), plain.predict_proba(images), strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
        assert torch.equal(
            onnx.decide(*onnx.predict_proba(images)), plain.decide(*plain.predict_proba(images))
        )


def test_a_network_is_exported_once_then_read_from_the_cache(
    trained: tuple[Path, Path], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, _ = trained
    labellers(run_dir, "onnx")
    before = {path: path.stat().st_mtime_ns for path in cache.glob("*.onnx")}

    def no_export(*args: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_stage, "export", no_export)
    assert labellers(run_dir, "onnx").stage2.onnx is not None
    assert {path: path.stat().st_mtime_ns for path in cache.glob("*.onnx")} == before


def test_a_damaged_cached_file_is_exported_again(
    trained: tuple[Path, Path], cache: Path, capsys: pytest.CaptureFixture
) -> None:
    run_dir, _ = trained
    stage1, _, _ = cascade_checkpoints(run_dir)
    damaged = onnx_stage.cache_path(stage1)
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"not an onnx model")
    labeller = labellers(run_dir, "onnx")
    assert "re-exporting" in capsys.readouterr().err
    assert damaged.stat().st_size > 1000 and labeller.stage1.onnx is not None


def test_without_onnx_runtime_auto_runs_torch_and_onnx_says_what_is_missing(
    trained: tuple[Path, Path], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, _ = trained
    real = onnx_stage.find_spec
    monkeypatch.setattr(
        onnx_stage, "find_spec", lambda name: None if name == "onnxruntime" else real(name)
    )
    assert labellers(run_dir, "auto").stage1.onnx is None
    with pytest.raises(onnx_stage.RuntimeUnavailableError, match="onnxruntime"):
        labellers(run_dir, "onnx")
    with pytest.raises(ValueError, match="runtime must be one of"):
        labellers(run_dir, "tensorrt")


def test_a_failed_export_leaves_auto_on_torch_with_a_note(
    trained: tuple[Path, Path],
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    run_dir, _ = trained

    def broken(*args: object) -> None:
        raise RuntimeError("exporter broke")

    monkeypatch.setattr(onnx_stage, "export", broken)
    assert labellers(run_dir, "auto").stage1.onnx is None
    assert "runs in PyTorch" in capsys.readouterr().err
    with pytest.raises(onnx_stage.RuntimeUnavailableError, match="exporter broke"):
        labellers(run_dir, "onnx")


def test_predict_labels_the_same_by_either_runtime(
    trained: tuple[Path, Path], cache: Path, capsys: pytest.CaptureFixture
) -> None:
    run_dir, root = trained
    folder = root / "test"
    rows = {}
    for runtime in ("onnx", "torch"):
        assert main(["--run", str(run_dir), "--json", "--runtime", runtime, str(folder)]) == 0
        rows[runtime] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in rows["onnx"]] == [r["label"] for r in rows["torch"]]
    for a, b in zip(rows["onnx"], rows["torch"], strict=True):
        assert a["p_infected"] == pytest.approx(b["p_infected"], abs=1e-4)


def test_adapting_keeps_torch(trained: tuple[Path, Path], cache: Path) -> None:
    run_dir, _ = trained
    stage1, stage2, _ = cascade_checkpoints(run_dir)
    unfolded = Labeller.from_checkpoints(stage1, stage2, fold_bn=False, runtime="auto")
    assert unfolded.stage1.onnx is None and not cache.exists()  # BatchNorm is re-estimated first


def test_adapt_with_runtime_onnx_is_refused_by_name(
    trained: tuple[Path, Path], capsys: pytest.CaptureFixture
) -> None:
    run_dir, root = trained
    with pytest.raises(SystemExit) as exited:
        main(["--run", str(run_dir), "--adapt", "--runtime", "onnx", str(root / "test")])
    assert exited.value.code == 2
    assert "--adapt re-estimates BatchNorm in PyTorch" in capsys.readouterr().err
