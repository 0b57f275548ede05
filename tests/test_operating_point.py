"""Operating points: recall-first thresholds chosen on val, both points side by side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_plots import TARGET_RECALL, tiny_cascade

from xray_lightning.modules import CascadeModule
from xray_lightning.operating_point import (
    OperatingPointError,
    Probabilities,
    cascade_metrics,
    comparison_table,
    decide,
    parse_target_recall,
    threshold_for_recall,
)


@pytest.mark.parametrize("target", [0.5, 0.8, 0.9, 0.95, 1.0])
def test_threshold_reaches_the_target_and_is_the_highest_that_does(target: float) -> None:
    generator = torch.Generator().manual_seed(0)
    scores = torch.rand(200, generator=generator)
    targets = (torch.rand(200, generator=generator) < scores).long()  # informative scores
    t = threshold_for_recall(scores, targets, target)
    positives = scores[targets.bool()]
    for predicted in (positives >= t, positives > t):  # the cascade's and torchmetrics' rule
        assert predicted.float().mean() >= target
    kept = positives[positives >= t].min()
    assert (positives > kept).float().mean() < target  # one positive fewer misses the target


def test_target_recall_parsing_and_errors() -> None:
    assert parse_target_recall(None) is None
    assert parse_target_recall(0.98) == {"t1": 0.98, "t2": 0.98}
    assert parse_target_recall({"t1": 0.99}) == {"t1": 0.99}
    with pytest.raises(OperatingPointError, match=r"must be a number in \(0, 1\]"):
        parse_target_recall(1.5)
    with pytest.raises(OperatingPointError, match="unknown key"):
        parse_target_recall({"stage1": 0.9})
    with pytest.raises(OperatingPointError, match="no positive"):
        threshold_for_recall(torch.rand(4), torch.zeros(4), 0.9)


def test_decide_matches_the_cascade_rule() -> None:
    p_inf = torch.tensor([0.1, 0.7, 0.7, 0.3])
    p_cov = torch.tensor([0.9, 0.2, 0.8, 0.6])
    assert decide(p_inf, p_cov, 0.5, 0.5).tolist() == [0, 1, 2, 0]
    assert decide(p_inf, p_cov, 0.25, 0.7).tolist() == [0, 1, 2, 1]


@pytest.fixture(scope="module")
def run_result(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, Path]:
    run_dir, root = tiny_cascade(tmp_path_factory)
    return json.loads((run_dir / "metrics.json").read_text()), run_dir, root


def test_metrics_json_has_both_operating_points(run_result: tuple[dict, Path, Path]) -> None:
    result, _, _ = run_result
    points = result["operating_points"]
    assert set(points) == {"accuracy_first", "recall_first"}
    assert result["operating_point"] == "recall_first"
    recall_first = points["recall_first"]
    assert result["thresholds"] == {"t1": recall_first["t1"], "t2": recall_first["t2"]}
    assert result["metrics"] == recall_first["metrics"]
    assert (points["accuracy_first"]["t1"], points["accuracy_first"]["t2"]) == (0.5, 0.5)
    # chosen on val: the val recalls reach the target
    assert recall_first["metrics"]["val/stage1/recall"] >= TARGET_RECALL
    assert recall_first["metrics"]["val/stage2/recall"] >= TARGET_RECALL
    for name in points:
        assert "test/acc" in points[name]["metrics"] and len(points[name]["confusion"]["test"]) == 3
    table = comparison_table(points, "test")
    assert "| test | accuracy_first | recall_first |" in table
    assert f"{recall_first['metrics']['test/acc']:.4f}" in table


def test_cascade_metrics_reproduce_the_cascade_module(run_result: tuple[dict, Path, Path]) -> None:
    from xray_lightning.report import load_cascade_run

    result, run_dir, root = run_result
    run = load_cascade_run(run_dir, data_root=root)
    probs = dict(run.splits)
    for point in result["operating_points"].values():
        metrics, confusion = cascade_metrics(probs, point["t1"], point["t2"])
        assert confusion == point["confusion"]
        for key, value in point["metrics"].items():
            assert metrics[key] == pytest.approx(value, abs=1e-5), key
    probabilities = run.splits["val"]
    assert isinstance(probabilities, Probabilities)
    stage1, stage2, thresholds = (
        run.cascade.stage1,
        run.cascade.stage2,
        result["thresholds"],
    )
    cascade = CascadeModule(stage1, stage2, **thresholds)
    assert torch.equal(
        cascade.decide(probabilities.p_infected, probabilities.p_covid),
        decide(probabilities.p_infected, probabilities.p_covid, **thresholds),
    )
