"""Declared site adaptation (AdaBN): BatchNorm statistics re-estimated on the images being
labelled, opt-in in predict and evaluate, refused below the minimum batch, reported apart."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_plots import tiny_cascade
from torch import nn

from xray_lightning import adapt, evaluate, predict
from xray_lightning.labeller import Labeller
from xray_lightning.runs import cascade_checkpoints


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tiny_cascade(tmp_path_factory)


def test_batchnorm_statistics_become_those_of_the_inputs() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten()).eval()
    weights = {
        k: v.clone()
        for k, v in net.state_dict().items()
        if "running" not in k and "num_batches" not in k
    }
    inputs = 3.0 + 2.0 * torch.randn(40, 1, 8, 8)
    adapt.reestimate_batchnorm(net, inputs)
    features = net[0](inputs)
    bn = net[1]
    torch.testing.assert_close(bn.running_mean, features.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(bn.running_var, features.var(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert not bn.training and bn.momentum == 0.1  # eval mode and its momentum are restored
    for key, value in weights.items():
        assert torch.equal(net.state_dict()[key], value)  # the weights are untouched


def test_a_network_without_batchnorm_is_refused() -> None:
    with pytest.raises(adapt.AdaptError, match="no BatchNorm layer"):
        adapt.reestimate_batchnorm(nn.Sequential(nn.Conv2d(1, 2, 3)), torch.zeros(4, 1, 8, 8))


def test_too_few_images_are_refused_with_the_minimum_named(trained: tuple[Path, Path]) -> None:
    run_dir, _ = trained
    stage1, stage2, thresholds = cascade_checkpoints(run_dir)
    labeller = Labeller.from_checkpoints(stage1, stage2, **thresholds, fold_bn=False)
    with pytest.raises(adapt.AdaptError, match=f"at least {adapt.MIN_IMAGES} images"):
        adapt.adapt_cascade(labeller, torch.zeros(adapt.MIN_IMAGES - 1, 1, 64, 64))


def test_adapting_changes_stage1_only_and_folds(trained: tuple[Path, Path]) -> None:
    run_dir, _ = trained
    stage1, stage2, thresholds = cascade_checkpoints(run_dir)
    plain = Labeller.from_checkpoints(stage1, stage2, **thresholds)
    adapted = Labeller.from_checkpoints(stage1, stage2, **thresholds, fold_bn=False)
    inputs = 0.5 + 2.0 * torch.randn(80, 1, 64, 64, generator=torch.Generator().manual_seed(2))
    used = adapt.adapt_cascade(adapted, inputs, stages=("stage1",))
    assert used == {"stage1": 80}
    assert not adapt.batchnorms(adapted.stage1.net)  # folded after adapting
    a1, a2 = adapted.predict_proba(inputs)
    p1, p2 = plain.predict_proba(inputs)
    assert not torch.allclose(a1, p1, atol=1e-4)  # stage 1 now normalises with these inputs
    torch.testing.assert_close(a2, p2, atol=1e-5, rtol=1e-4)  # stage 2 kept its statistics


def test_predict_adapt_refuses_a_small_batch_and_labels_a_large_one(
    trained: tuple[Path, Path], capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, root = trained
    files = sorted(str(p) for p in (root / "test").rglob("*.jpg"))
    assert predict.main(["--run", str(run_dir), "--adapt", *files[:3]]) == 2
    assert f"--adapt needs at least {adapt.MIN_IMAGES} readable images" in capsys.readouterr().err
    monkeypatch.setattr(adapt, "MIN_IMAGES", 3)
    assert predict.main(["--run", str(run_dir), "--adapt", "--csv", *files]) == 0
    captured = capsys.readouterr()
    assert f"adapted: BatchNorm re-estimated on these {len(files)} images" in captured.err
    assert len(captured.out.strip().splitlines()) == len(files) + 1


def test_evaluate_prints_the_adapted_block_apart(
    trained: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, root = trained
    monkeypatch.setattr(adapt, "MIN_IMAGES", 4)
    plain = evaluate.evaluate(
        evaluate.build_parser().parse_args(["--run", str(run_dir), "--data-root", str(root)])
    )
    args = ["--run", str(run_dir), "--data-root", str(root), "--adapt"]
    result = evaluate.evaluate(evaluate.build_parser().parse_args(args))
    assert result["metrics"] == plain["metrics"]  # the inductive numbers are not touched
    adapted = result["adapted"]
    assert set(adapted["adapted_on"]) == {"val", "test"}
    assert {"test/acc", "val/acc", "test/stage1/acc"} <= set(adapted["metrics"])
    assert "acc" in adapted["intervals"]["test"]
    text = evaluate.report_text(result)
    assert text.index("INDUCTIVE") < text.index("ADAPTED")
    assert f"3-class accuracy {adapted['metrics']['test/acc']:.4f}" in text.split("ADAPTED")[1]
