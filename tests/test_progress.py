"""The job progress bar: stage i/N, epoch e/N and an ETA for the whole job; knobs without `+`."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra_utils import compose_train

from xray_lightning.callbacks.job_progress import JobClock, JobPlan, JobProgressBar, format_seconds
from xray_lightning.train import later_fit_images, member_config, stage_config


def fake_trainer(batches: int = 10, max_epochs: int = 4, epoch: int = 0) -> SimpleNamespace:
    return SimpleNamespace(num_training_batches=batches, max_epochs=max_epochs, current_epoch=epoch)


def test_label_names_stage_and_epoch_of_n() -> None:
    clock = JobClock()
    clock.plan = JobPlan(stage=1, stages=2, name="normal_vs_infected")
    assert clock.label(fake_trainer(epoch=2)) == "stage 1/2 normal_vs_infected · epoch 3/4"
    clock.plan = JobPlan(name="covid_vs_noncovid")
    assert clock.label(fake_trainer()) == "covid_vs_noncovid · epoch 1/4"


def test_eta_counts_this_stage_and_the_later_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("xray_lightning.callbacks.job_progress.time.perf_counter", lambda: now[0])
    clock = JobClock()
    clock.plan = JobPlan(stage=1, stages=2, later_images=320)  # 10 batches of 32 to come later
    clock.start(fake_trainer(batches=10, max_epochs=4))  # 40 batches in this stage
    assert clock.seconds_left() is None  # nothing measured yet
    for _ in range(10):
        now[0] += 2.0  # 2 s per batch
        clock.step(([0] * 32, [0] * 32))
    # 30 batches left here + 10 in the later stage, at 2 s each
    assert clock.seconds_left() == pytest.approx(80.0)
    assert format_seconds(80.0) == "01:20" and format_seconds(3725) == "1:02:05"


def test_resumed_stage_counts_only_the_epochs_left() -> None:
    clock = JobClock()
    clock.start(fake_trainer(batches=10, max_epochs=6, epoch=4))
    assert clock.total == 20


def test_later_stage_images_are_the_infected_training_images(
    synthetic_root: Path, tmp_path: Path
) -> None:
    cfg = compose_train(
        synthetic_root,
        tmp_path,
        [
            "task=cascade",
            "trainer.max_epochs=3",
            "+task.stage_overrides.covid_vs_noncovid.trainer.max_epochs=5",
        ],
    )
    summary = {"train": {"normal": 30, "infected": 70}}
    stage2 = stage_config(cfg, "covid_vs_noncovid", tmp_path)
    assert later_fit_images({}, [stage2], summary) == 70 * 5
    assert later_fit_images({}, [], summary) == 0


def test_an_ensemble_job_counts_every_later_members_fits(
    synthetic_root: Path, tmp_path: Path
) -> None:
    cfg = compose_train(synthetic_root, tmp_path, ["task=cascade", "task.members=2"])
    second, second_dir = member_config(cfg, 1, 2)
    assert int(second.seed) == int(cfg.seed) + 1
    assert second_dir.name == "member1"
    later = [stage_config(cfg, "covid_vs_noncovid", tmp_path)] + [
        stage_config(second, stage, second_dir) for stage in cfg.task.stages
    ]
    epochs = int(cfg.trainer.max_epochs)
    counts: dict[str, int] = {}
    summary = {"train": {"normal": 30, "non-covid": 50, "covid": 20}}
    assert later_fit_images(counts, later, summary) == (70 + 100 + 70) * epochs
    # a later stage-2 summary knows only infected images: the counts kept from stage 1 serve
    assert later_fit_images(counts, later[1:], {"train": {"non-covid": 50, "covid": 20}}) == (
        (100 + 70) * epochs
    )


def test_the_bar_names_the_member_of_an_ensemble() -> None:
    clock = JobClock()
    clock.plan = JobPlan(stage=2, stages=2, name="covid_vs_noncovid", member=3, members=5)
    label = clock.label(fake_trainer(batches=10, max_epochs=6, epoch=1))
    assert label == "member 3/5 · stage 2/2 covid_vs_noncovid · epoch 2/6"


def test_lightning_knobs_override_without_plus(synthetic_root: Path, tmp_path: Path) -> None:
    overrides = [
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.max_time=00:00:10:00",
        "trainer.gradient_clip_val=1.0",
        "trainer.accumulate_grad_batches=2",
    ]
    cfg = compose_train(synthetic_root, tmp_path, overrides, fast=False)
    assert cfg.trainer.limit_train_batches == 2 and cfg.trainer.gradient_clip_val == 1.0


def test_progress_bar_is_on_by_default_and_left_out_when_disabled(
    synthetic_root: Path, tmp_path: Path
) -> None:
    from xray_lightning.builders import build_callbacks

    cfg = compose_train(synthetic_root, tmp_path, ["trainer.enable_progress_bar=true"])
    assert any(isinstance(c, JobProgressBar) for c in build_callbacks(cfg))
    cfg = compose_train(synthetic_root, tmp_path, ["trainer.enable_progress_bar=false"])
    assert not any(isinstance(c, JobProgressBar) for c in build_callbacks(cfg))
