"""Training end to end on synthetic data: every task and option, cascade, resume, failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra_utils import compose_train

from xray_lightning.data import XrayDataModule
from xray_lightning.data.synthetic import DEFAULT_COUNTS, write_synthetic_dataset
from xray_lightning.errors import CheckpointError
from xray_lightning.modules import CascadeModule, load_classifier
from xray_lightning.train import CONFIG_DIR, fit_stage, run

TASKS = ("normal_vs_infected", "covid_vs_noncovid", "three_class", "cascade")
GROUPS = ("net", "init", "loss", "optimizer", "scheduler", "logger")


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.parametrize("task", TASKS)
def test_fast_dev_run_each_task(task: str, synthetic_root: Path, tmp_path: Path) -> None:
    cfg = compose_train(synthetic_root, tmp_path, [f"task={task}"])
    result = run(cfg)
    assert result["status"] == "ok", result["reason"]
    saved = read_json(tmp_path / "metrics.json")
    assert saved["status"] == "ok"
    assert saved["task"] == task
    if task == "cascade":
        assert (tmp_path / "stage1" / "metrics.json").is_file()
        assert (tmp_path / "stage2" / "metrics.json").is_file()
        assert "test/acc" in saved["metrics"] and "showcase/acc" in saved["metrics"]
        assert len(saved["confusion"]["test"]) == 3
    else:
        assert "test/acc" in saved["metrics"] and "val/acc" in saved["metrics"]


@pytest.mark.parametrize(
    ("group", "option"),
    [(g, o) for g in GROUPS for o in group_options(g)],
    ids=lambda v: str(v),
)
def test_fast_dev_run_each_option(
    group: str, option: str, synthetic_root: Path, tmp_path: Path
) -> None:
    cfg = compose_train(synthetic_root, tmp_path, [f"{group}={option}"])
    result = run(cfg)
    assert result["status"] == "ok", result["reason"]
    assert 0.0 <= result["metrics"]["test/acc"] <= 1.0


@pytest.mark.parametrize("loss", ["bce", "ce", "hinge", "squared_hinge"])
def test_three_class_with_every_loss(loss: str, synthetic_root: Path, tmp_path: Path) -> None:
    cfg = compose_train(synthetic_root, tmp_path, ["task=three_class", f"loss={loss}"])
    assert run(cfg)["status"] == "ok"


@pytest.fixture(scope="module")
def cascade_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4x larger synthetic set of small images: enough optimiser steps to learn in seconds."""
    counts = {
        split: {name: 4 * n for name, n in per_class.items()}
        for split, per_class in DEFAULT_COUNTS.items()
    }
    root = tmp_path_factory.mktemp("cascade-data") / "dataset"
    return write_synthetic_dataset(root, counts, image_size=64, seed=1)


@pytest.fixture(scope="module")
def trained_cascade(cascade_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("cascade")
    overrides = ["experiment=demo", "seed=3"]  # make train-demo's recipe (8 epochs per stage)
    result = run(compose_train(cascade_root, run_dir, overrides, fast=False))
    assert result["status"] == "ok", result["reason"]
    return run_dir


def test_demo_cascade_learns(trained_cascade: Path) -> None:
    """make train-demo must visibly learn: far above chance, not one class for every image."""
    saved = read_json(trained_cascade / "metrics.json")
    assert saved["choices"]["experiment"] == "demo" or "experiment=demo" in saved["overrides"]
    assert min(saved["metrics"][f"test/recall_{c}"] for c in ("normal", "non_covid", "covid")) > 0.5
    # 3 balanced test classes: chance is 1/3; a learnt cascade is far above it
    assert saved["metrics"]["test/acc"] >= 0.75
    assert saved["metrics"]["test/stage1/acc"] >= 0.7
    for stage in ("stage1", "stage2"):
        stage_dir = trained_cascade / stage
        assert (stage_dir / "checkpoints" / "last.ckpt").is_file()
        assert list((stage_dir / "checkpoints").glob("best-epoch*.ckpt"))
        assert list((stage_dir / "tensorboard").glob("events.out.tfevents.*"))


def test_confusion_images_come_from_the_callback_once_per_epoch(trained_cascade: Path) -> None:
    """The LightningModule draws nothing; callbacks.ConfusionImage adds one val confusion image per
    epoch and one for the best checkpoint's final validation (none for the sanity check); test the
    same (the per-epoch test curve) plus the best checkpoint's final test."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import xray_lightning.modules.classifier as classifier

    assert "matplotlib" not in classifier.__dict__ and "plt" not in classifier.__dict__
    saved = read_json(trained_cascade / "stage1" / "metrics.json")
    events = EventAccumulator(str(trained_cascade / "stage1" / "tensorboard"), {"images": 0})
    events.Reload()
    images = events.Images("val/confusion_matrix")
    assert len(images) == saved["epochs_trained"] + 1
    assert all(image.width > 100 and image.height > 100 for image in images)
    assert len(events.Images("test/confusion_matrix")) == len(images) + 1


def test_loader_reproduces_metrics_json(trained_cascade: Path, cascade_root: Path) -> None:
    saved = read_json(trained_cascade / "metrics.json")
    cascade = CascadeModule.from_checkpoints(
        saved["stages"]["normal_vs_infected"]["best_checkpoint"],
        saved["stages"]["covid_vs_noncovid"]["best_checkpoint"],
        t1=saved["thresholds"]["t1"],
        t2=saved["thresholds"]["t2"],
    )
    datamodule = XrayDataModule(
        root=cascade_root, stage="three_class", image_size=64, expect_size=64
    )
    datamodule.setup("test")
    labels, predicted = [], []
    for batch in datamodule.split_dataloader("test"):
        images, y = datamodule.transform_batch(batch, train=False)
        predicted.append(cascade(images))
        labels.append(y)
    accuracy = (torch.cat(predicted) == torch.cat(labels)).float().mean().item()
    assert accuracy == pytest.approx(saved["metrics"]["test/acc"], abs=1e-6)


def test_stage_checkpoint_rebuilds_same_test_numbers(trained_cascade: Path) -> None:
    stage = read_json(trained_cascade / "stage1" / "metrics.json")
    module = load_classifier(stage["best_checkpoint"], expected_stage="normal_vs_infected")
    assert module.hparams.stage == "normal_vs_infected"
    with pytest.raises(CheckpointError, match="covid_vs_noncovid checkpoint was expected"):
        load_classifier(stage["best_checkpoint"], expected_stage="covid_vs_noncovid")


def test_missing_and_foreign_checkpoints_get_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_classifier(tmp_path / "nope.ckpt")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_classifier(junk)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not an xray-lightning classifier checkpoint"):
        load_classifier(foreign)


def test_resume_from_other_architecture_is_refused(
    trained_cascade: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    last = trained_cascade / "stage1" / "checkpoints" / "last.ckpt"
    cfg = compose_train(synthetic_root, tmp_path, ["net=cnn_bn", f"ckpt_path={last}"])
    with pytest.raises(CheckpointError, match="cannot resume"):
        run(cfg)
    assert read_json(tmp_path / "metrics.json")["status"] == "failed"


def test_nan_loss_stops_with_a_failed_run(synthetic_root: Path, tmp_path: Path) -> None:
    cfg = compose_train(
        synthetic_root,
        tmp_path,
        ["optimizer=sgd", "optimizer.lr=1e12", "init=kaiming", "trainer.max_epochs=2"],
        fast=False,
    )
    result = run(cfg)
    saved = read_json(tmp_path / "metrics.json")
    assert result["status"] == saved["status"] == "failed"
    assert "learning rate" in saved["reason"] and "step" in saved["reason"]


def test_resume_matches_uninterrupted_run(synthetic_root: Path, tmp_path: Path) -> None:
    common = [
        "seed=11",
        "trainer.deterministic=true",
        "net=cnn",
        "data.augmentation.enabled=true",
        "callbacks.model_checkpoint.monitor=null",  # best = last: compare the final weights
    ]
    full = run(
        compose_train(synthetic_root, tmp_path / "full", [*common, "trainer.max_epochs=3"], False)
    )
    first = run(
        compose_train(synthetic_root, tmp_path / "part", [*common, "trainer.max_epochs=1"], False)
    )
    last = Path(first["last_checkpoint"])
    resumed = run(
        compose_train(
            synthetic_root,
            tmp_path / "resumed",
            [*common, "trainer.max_epochs=3", f"ckpt_path={last}"],
            False,
        )
    )
    assert resumed["status"] == full["status"] == "ok"
    for key, value in full["metrics"].items():
        assert resumed["metrics"][key] == pytest.approx(value, abs=1e-6), key


def test_trainer_test_on_loaded_cascade(trained_cascade: Path, cascade_root: Path) -> None:
    import pytorch_lightning as pl

    saved = read_json(trained_cascade / "metrics.json")
    cascade = CascadeModule.from_checkpoints(
        saved["stages"]["normal_vs_infected"]["best_checkpoint"],
        saved["stages"]["covid_vs_noncovid"]["best_checkpoint"],
    )
    datamodule = XrayDataModule(
        root=cascade_root, stage="three_class", image_size=64, expect_size=64
    )
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    logged = trainer.test(cascade, datamodule=datamodule, verbose=False)[0]
    assert logged["test/acc"] == pytest.approx(saved["metrics"]["test/acc"], abs=1e-6)
    assert logged["test/stage1/acc"] == pytest.approx(saved["metrics"]["test/stage1/acc"], abs=1e-6)
    assert len(cascade.confusion["test"]) == 3


def test_fast_dev_run_kaggle_layout(synthetic_kaggle_root: Path, tmp_path: Path) -> None:
    cfg = compose_train(synthetic_kaggle_root, tmp_path, ["data=kaggle", "data.expect_size=null"])
    result = run(cfg)
    assert result["status"] == "ok", result["reason"]
    assert sum(result["data"]["test"].values()) > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="trainer=gpu/ddp need a CUDA GPU")
@pytest.mark.parametrize("trainer", ["gpu", "ddp"])
def test_fast_dev_run_gpu_trainers(trainer: str, synthetic_root: Path, tmp_path: Path) -> None:
    overrides = [f"trainer={trainer}"] + (["trainer.devices=1"] if trainer == "ddp" else [])
    assert run(compose_train(synthetic_root, tmp_path, overrides))["status"] == "ok"


def test_ema_checkpoint_is_tested_with_the_weights_it_was_selected_with(
    synthetic_root: Path, tmp_path: Path
) -> None:
    overrides = ["callbacks=ema", "callbacks.ema.decay=0.9", "trainer.max_epochs=2", "seed=5"]
    result, module = fit_stage(compose_train(synthetic_root, tmp_path, overrides, fast=False))
    assert result["status"] == "ok", result["reason"]
    checkpoint = torch.load(result["best_checkpoint"], weights_only=True)
    raw, averaged = checkpoint["current_model_state"], checkpoint["state_dict"]
    assert any(not torch.equal(raw[k], averaged[k]) for k in averaged)  # the average is not the raw
    # after validate/test of the best checkpoint the module (what a cascade is built from) holds
    # the averaged weights, the same ones load_classifier / from_checkpoints / predict load
    held = module.state_dict()
    assert all(torch.equal(held[k], averaged[k]) for k in averaged)
    loaded = load_classifier(result["best_checkpoint"]).state_dict()
    assert all(torch.equal(loaded[k], averaged[k]) for k in averaged)
