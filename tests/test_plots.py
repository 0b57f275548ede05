"""Figures of a tiny synthetic cascade run: every figure is a real, non-blank PNG of its size.

``tiny_cascade`` trains the cascade used by test_plots, test_predict, test_notebooks and
test_operating_point once per test session (the run dir is kept under the session's base temp
dir, so each module's fixture finds it already trained).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra_utils import compose_train
from PIL import Image
from torch import nn

from xray_lightning.data.synthetic import write_synthetic_dataset
from xray_lightning.plots.io import DPI, FigureInputError, save_figure

TARGET_RECALL = 0.9


def tiny_cascade(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(run dir, data root) of a 2-epoch cascade on 64x64 synthetic images, trained once."""
    from xray_lightning.train import run

    base = tmp_path_factory.getbasetemp() / "tiny_cascade"
    root, run_dir = base / "dataset", base / "run"
    done = run_dir / "metrics.json"
    if not done.is_file():
        write_synthetic_dataset(root, image_size=64, seed=1)
        cfg = compose_train(
            root,
            run_dir,
            [
                "task=cascade",
                "net=cnn_bn",
                "trainer.max_epochs=2",
                "seed=3",
                f"task.cascade.target_recall={TARGET_RECALL}",
            ],
            fast=False,
        )
        result = run(cfg)
        assert result["status"] == "ok", result["reason"]
    assert json.loads(done.read_text())["status"] == "ok"
    return run_dir, root


@pytest.fixture(scope="module")
def cascade_run(tmp_path_factory: pytest.TempPathFactory):
    from xray_lightning.report import load_cascade_run

    run_dir, root = tiny_cascade(tmp_path_factory)
    return load_cascade_run(run_dir, data_root=root)


def check_png(path: Path, size_inches: tuple[float, float]) -> None:
    """A PNG of the figure's size in pixels, with real content (not one flat colour)."""
    assert path.is_file() and path.stat().st_size > 1000
    with Image.open(path) as image:
        assert image.format == "PNG"
        expected = tuple(round(s * DPI) for s in size_inches)
        assert abs(image.size[0] - expected[0]) <= 1 and abs(image.size[1] - expected[1]) <= 1
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 5


FIGURES = {
    "learning_curves_stage1": lambda r, rep: rep.figure_learning_curves(r, "stage1"),
    "learning_curves_stage2": lambda r, rep: rep.figure_learning_curves(r, "stage2"),
    "showcase": lambda r, rep: rep.figure_showcase(r),
    "confusion_stage1": lambda r, rep: rep.figure_confusion(r, "stage1"),
    "confusion_stage2": lambda r, rep: rep.figure_confusion(r, "stage2"),
    "confusion_cascade": lambda r, rep: rep.figure_confusion(r, "cascade"),
    "roc": lambda r, rep: rep.figure_roc(r, rep.operating_points(r)),
    "failures": lambda r, rep: rep.figure_failures(r),
    "feature_maps_stage1": lambda r, rep: rep.figure_feature_maps(r, "stage1"),
    "gradcam": lambda r, rep: rep.figure_gradcam(r),
}


@pytest.mark.parametrize("name", list(FIGURES))
def test_each_figure_is_a_png_of_its_size(name: str, cascade_run, tmp_path: Path) -> None:
    from xray_lightning import report

    fig = FIGURES[name](cascade_run, report)
    size = tuple(fig.get_size_inches())
    check_png(save_figure(fig, tmp_path / f"{name}.png"), size)


def test_make_report_writes_every_figure_and_logs_them(cascade_run) -> None:
    from tensorboard.backend.event_processing import event_accumulator

    from xray_lightning.report import make_report

    written = make_report(run=cascade_run)
    expected = {
        "class_distribution",
        "learning_curves_stage1",
        "learning_curves_stage2",
        "showcase",
        "confusion_stage1",
        "confusion_stage2",
        "confusion_cascade",
        "roc",
        "failures",
        "feature_maps_stage1",
        "feature_maps_stage2",
        "gradcam",
        "reliability",
        "coverage",
        "operating_points",
    }
    assert set(written) == expected
    figures = cascade_run.run_dir / "figures"
    for name in expected - {"operating_points"}:
        assert written[name] == figures / f"{name}.png"
        with Image.open(written[name]) as image:
            assert min(image.size) > 200
    table = written["operating_points"].read_text()
    assert "accuracy_first" in table and "recall_first" in table
    accumulator = event_accumulator.EventAccumulator(
        str(cascade_run.run_dir / "tensorboard"), size_guidance={event_accumulator.IMAGES: 0}
    )
    accumulator.Reload()
    tags = set(accumulator.Tags()["images"])
    assert {f"report/{n}" for n in expected - {"operating_points"}} <= tags


def test_showcase_title_reports_the_accuracy(cascade_run) -> None:
    from xray_lightning.report import figure_showcase

    data = cascade_run.splits["showcase"]
    right = int((data.labels == data.predicted).sum())
    fig = figure_showcase(cascade_run)
    assert f"({right}/{len(data.labels)})" in fig._suptitle.get_text()
    assert len([ax for ax in fig.axes if ax.images]) == len(data.labels)


def test_learning_curves_follow_the_epochs(cascade_run) -> None:
    from xray_lightning.plots.curves import epoch_curves, read_scalars

    curves = epoch_curves(read_scalars(cascade_run.run_dir / "stage1" / "tensorboard"))
    for metric in ("loss", "acc", "precision", "recall"):
        for split in ("train", "val", "test"):
            assert [epoch for epoch, _ in curves[metric][split]] == [0, 1], (metric, split)


def test_epoch_curves_drop_the_final_evaluation_and_keep_resumed_values() -> None:
    from xray_lightning.plots.curves import epoch_curves

    scalars = {
        "epoch": {4: 0.0, 9: 1.0, 10: 2.0},
        "train/loss": {4: 0.9, 9: 0.5},
        "val/loss": {4: 1.0, 9: 0.7, 10: 0.7},  # step 10: the best checkpoint re-validated
    }
    curves = epoch_curves(scalars)
    assert curves["loss"]["train"] == [(0, 0.9), (1, 0.5)]
    assert curves["loss"]["val"] == [(0, 1.0), (1, 0.7)]
    with pytest.raises(FigureInputError, match="no per-epoch scalars"):
        epoch_curves({"epoch": {1: 0.0}})


def test_read_scalars_names_a_folder_without_events(tmp_path: Path) -> None:
    from xray_lightning.plots.curves import read_scalars

    with pytest.raises(FigureInputError, match=str(tmp_path)):
        read_scalars(tmp_path)


def test_failures_are_ordered_most_confident_first() -> None:
    from xray_lightning.plots.gallery import most_confident_mistakes

    labels = torch.tensor([0, 0, 1, 2, 2])
    predicted = torch.tensor([1, 0, 0, 1, 2])
    p_inf = torch.tensor([0.6, 0.1, 0.05, 0.99, 0.9])
    p_cov = torch.tensor([0.4, 0.5, 0.5, 0.1, 0.9])
    # confidences: row 0 0.6*0.6=0.36, row 2 0.95, row 3 0.99*0.9=0.891
    assert most_confident_mistakes(labels, predicted, p_inf, p_cov).tolist() == [2, 3, 0]
    assert most_confident_mistakes(labels, predicted, p_inf, p_cov, limit=1).tolist() == [2]


class BrightDarkNet(nn.Module):
    """Channel 0 sees bright pixels, channel 1 dark ones; score = mean(ch 0) - mean(ch 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0, 1, 1] = 1.0
            self.conv.weight[1, 0, 1, 1] = -1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.relu(self.conv(x)).mean(dim=(2, 3))
        return (features[:, 0] - features[:, 1])[:, None]


def test_grad_cam_lights_up_the_evidence_for_the_explained_class() -> None:
    from xray_lightning.plots.saliency import grad_cam

    images = torch.zeros(2, 1, 16, 16)
    images[:, :, 2:6, 2:6] = 1.0  # evidence for class 1
    images[:, :, 10:14, 10:14] = -1.0  # evidence for class 0
    cams = grad_cam(BrightDarkNet(), images, explain_class=torch.tensor([1, 0]))
    assert cams.shape == (2, 16, 16)
    assert float(cams.max()) == pytest.approx(1.0)
    bright, dark = cams[:, 3:5, 3:5].mean(dim=(1, 2)), cams[:, 11:13, 11:13].mean(dim=(1, 2))
    assert bright[0] > 0.9 and dark[0] < 0.1  # class 1 explained by the bright spot
    assert dark[1] > 0.9 and bright[1] < 0.1  # class 0 explained by the dark spot


def test_confusion_pair_shows_counts_and_shares() -> None:
    from xray_lightning.plots.confusion import confusion_pair_figure

    fig = confusion_pair_figure([[3, 1], [0, 4]], ["normal", "infected"], "t")
    texts = [[t.get_text() for t in ax.texts] for ax in fig.axes[:2]]
    assert texts[0] == ["3", "1", "0", "4"]
    assert texts[1] == ["0.75", "0.25", "0.00", "1.00"]


def test_feature_maps_come_from_the_first_conv_layers(cascade_run) -> None:
    from xray_lightning.plots.saliency import conv_layers, feature_maps

    net = cascade_run.cascade.stage1.net
    layers = conv_layers(net)[:2]
    data = cascade_run.splits["test"]
    from xray_lightning.report import model_inputs

    maps = feature_maps(net, model_inputs(cascade_run, data.raw[:3]), layers)
    assert [name for name, _ in layers] == list(maps)
    for (_, layer), out in zip(layers, maps.values(), strict=True):
        assert out.shape[:2] == (3, layer.out_channels)
