"""Ensemble cascades: ``task.members`` trains K cascades and evaluates their average; the run,
its export and ``CascadeModule.from_checkpoints([...], [...])`` give the same probabilities."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch
from hydra_utils import compose_train

from xray_lightning import evaluate, runs
from xray_lightning.errors import CheckpointError
from xray_lightning.labeller import Labeller
from xray_lightning.modules.cascade import CascadeModule
from xray_lightning.settings import ConfigError


@pytest.fixture(scope="module")
def ensemble_run(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from xray_lightning.train import run

    run_dir = tmp_path_factory.mktemp("ensemble") / "run"
    cfg = compose_train(
        synthetic_root,
        run_dir,
        ["task=cascade", "task.members=2", "net=cnn_bn", "trainer.max_epochs=1", "seed=5"],
        fast=False,
    )
    result = run(cfg)
    assert result["status"] == "ok", result["reason"]
    return run_dir


def member_cascades(run: Path) -> tuple[CascadeModule, list[CascadeModule]]:
    """The run's ensemble cascade and each member as a cascade of its own."""
    stage1, stage2, thresholds = runs.cascade_members(run)
    ensemble = CascadeModule.from_checkpoints(stage1, stage2, **thresholds)
    singles = [
        CascadeModule.from_checkpoints(a, b, **thresholds)
        for a, b in zip(stage1, stage2, strict=True)
    ]
    return ensemble, singles


def test_members_are_trained_with_their_own_seeds_and_folders(ensemble_run: Path) -> None:
    result = json.loads((ensemble_run / "metrics.json").read_text())
    for stage, folder in (("normal_vs_infected", "stage1"), ("covid_vs_noncovid", "stage2")):
        members = result["stages"][stage]["members"]
        assert [m["seed"] for m in members] == [5, 6]
        for k, member in enumerate(members):
            assert Path(member["best_checkpoint"]).is_relative_to(
                ensemble_run / f"member{k}" / folder
            )
    stage1, stage2, _ = runs.cascade_members(ensemble_run)
    assert len(stage1) == len(stage2) == 2 and stage1[0] != stage1[1]


def test_the_ensemble_averages_its_members(ensemble_run: Path) -> None:
    ensemble, singles = member_cascades(ensemble_run)
    images = torch.randn(6, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    got = ensemble.predict_proba(images)
    parts = [single.predict_proba(images) for single in singles]
    for stage in range(2):
        expected = (parts[0][stage] + parts[1][stage]) / 2
        torch.testing.assert_close(got[stage], expected)
    assert not torch.allclose(parts[0][0], parts[1][0])  # two seeds, two different members


def test_evaluate_re_measures_the_ensemble_run_as_recorded(
    ensemble_run: Path, synthetic_root: Path
) -> None:
    args = evaluate.build_parser().parse_args(
        ["--run", str(ensemble_run), "--data-root", str(synthetic_root)]
    )
    result = evaluate.evaluate(args)
    assert len(result["stage1"].split(", ")) == 2
    assert result["recorded_max_abs_diff"] < 1e-4


def test_an_exported_ensemble_loads_as_the_same_cascade(
    ensemble_run: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    written = evaluate.export_cascade(ensemble_run, folder)
    assert {"stage1", "stage1.m1", "stage2", "stage2.m1"} <= set(written)
    saved = json.loads((folder / "thresholds.json").read_text())
    assert saved["members"] == {
        "stage1": ["stage1.ckpt", "stage1.m1.ckpt"],
        "stage2": ["stage2.ckpt", "stage2.m1.ckpt"],
    }
    source = runs.cascade_source(model=folder)
    assert source.is_ensemble and len(source.stage1_checkpoints) == 2
    labeller = Labeller.from_checkpoints(
        source.stage1_checkpoints, source.stage2_checkpoints, **source.thresholds
    )
    stage1, stage2, thresholds = runs.cascade_members(ensemble_run)
    module = CascadeModule.from_checkpoints(stage1, stage2, **thresholds)
    images = torch.randn(4, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    for a, b in zip(labeller.predict_proba(images), module.predict_proba(images), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_spread_is_the_members_disagreement_at_the_deciding_stages(ensemble_run: Path) -> None:
    from xray_lightning.decision import staged_proba

    ensemble, singles = member_cascades(ensemble_run)
    images = torch.randn(12, 1, 64, 64, generator=torch.Generator().manual_seed(2))
    p1 = torch.stack([single.stage1.predict_proba(images) for single in singles])
    p2 = torch.stack([single.stage2.predict_proba(images) for single in singles])
    ensemble.t1 = float(p1.mean(0).median())  # images on both sides of the threshold
    p_inf, p_cov, spread = staged_proba(ensemble.stage1, ensemble.stage2, images, ensemble.t1)
    called = p_inf >= ensemble.t1
    assert 0 < int(called.sum()) < 12
    torch.testing.assert_close(p_inf, p1.mean(0))
    torch.testing.assert_close(p_cov[called], p2.mean(0)[called])
    # two members: the std is half their difference
    s1, s2 = (p1[0] - p1[1]).abs() / 2, (p2[0] - p2[1]).abs() / 2
    torch.testing.assert_close(spread[~called], s1[~called])
    torch.testing.assert_close(spread[called], torch.maximum(s1, s2)[called])
    assert float(spread.max()) > 0
    _, _, alone = staged_proba(singles[0].stage1, singles[0].stage2, images, ensemble.t1)
    assert torch.equal(alone, torch.zeros(12))


def test_predict_refers_the_images_an_ensemble_disagrees_on(
    ensemble_run: Path, synthetic_root: Path
) -> None:
    from xray_lightning.calibration import Calibration
    from xray_lightning.predict import predict_files

    stage1, stage2, thresholds = runs.cascade_members(ensemble_run)
    labeller = Labeller.from_checkpoints(stage1, stage2, **thresholds)
    files = sorted((synthetic_root / "test").rglob("*.jpg"))[:24]
    spreads: list[torch.Tensor] = []

    def keep_spread(paths: list, raw: torch.Tensor, inputs: torch.Tensor, *rest: object) -> None:
        spreads.append(labeller.label_proba(inputs)[2])

    no_band = list(predict_files(labeller, files, 8, keep_spread, Calibration()))
    assert not any(row.refer for row in no_band)
    spread = torch.cat(spreads)
    cut = float(spread.median())
    banded = list(predict_files(labeller, files, 8, None, Calibration(refer_spread=cut)))
    assert [row.refer for row in banded] == (spread > cut).tolist()
    assert 0 < sum(row.refer for row in banded) < len(files)
    assert [row.label for row in banded] == [row.label for row in no_band]  # only flags differ


def test_a_hostile_members_list_is_refused(ensemble_run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    evaluate.export_cascade(ensemble_run, folder)
    shutil.copy(folder / "stage1.ckpt", tmp_path / "outside.ckpt")
    saved = json.loads((folder / "thresholds.json").read_text())
    saved["members"]["stage1"] = ["stage1.ckpt", "../outside.ckpt"]
    (folder / "thresholds.json").write_text(json.dumps(saved))
    with pytest.raises(CheckpointError, match=r"members\.stage1 holds '\.\./outside\.ckpt'"):
        runs.cascade_source(model=folder)


def test_members_must_be_a_positive_integer(synthetic_root: Path, tmp_path: Path) -> None:
    from xray_lightning.config_check import check_config

    cfg = compose_train(synthetic_root, tmp_path, ["task=cascade", "task.members=0"])
    with pytest.raises(ConfigError, match="task.members must be a positive integer"):
        check_config(cfg)


class _Member(torch.nn.Module):
    """A stand-in stage member: a fixed probability, a stage, an input spec."""

    def __init__(self, p: float, stage: str = "normal_vs_infected", size: int = 64) -> None:
        super().__init__()
        self.p = torch.nn.Parameter(torch.tensor(p, dtype=torch.float64))
        self.stage, self.preprocess, self.threshold = stage, {"image_size": size}, p
        self.net = torch.nn.Identity()

    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        return self.p.float().expand(len(images))


def test_one_ensemble_class_averages_and_answers_for_its_first_member() -> None:
    from xray_lightning.ensemble import StageEnsemble, stage_of

    first, second = _Member(0.2), _Member(0.6)
    ensemble = stage_of([first, second])
    assert isinstance(ensemble, StageEnsemble) and stage_of([first]) is first
    torch.testing.assert_close(ensemble.predict_proba(torch.zeros(3)), torch.full((3,), 0.4))
    assert ensemble.member_proba(torch.zeros(2)).shape == (2, 2)
    assert ensemble.threshold == 0.2 and ensemble.net is first.net  # the first member's
    ensemble.float()  # an nn.Module: dtype and mode changes reach every member
    assert second.p.dtype == torch.float32
    with pytest.raises(AttributeError):
        ensemble.no_such_attribute  # noqa: B018
    assert copy.deepcopy(ensemble).threshold == 0.2  # evaluate --adapt copies the cascade
    with pytest.raises(AttributeError):  # half-built, as while unpickling: no member to ask
        StageEnsemble.__new__(StageEnsemble).threshold  # noqa: B018


def test_an_ensemble_of_different_stages_or_inputs_is_refused() -> None:
    from xray_lightning.ensemble import StageEnsemble

    with pytest.raises(CheckpointError, match="one stage"):
        StageEnsemble([_Member(0.2), _Member(0.4, stage="covid_vs_noncovid")])
    with pytest.raises(CheckpointError, match="different input preprocessing"):
        StageEnsemble([_Member(0.2), _Member(0.4, size=128)])
    with pytest.raises(CheckpointError, match="at least one member"):
        StageEnsemble([])
