"""Synthetic data: the layouts are right and the classes are learnable from the pixels."""

from __future__ import annotations

from pathlib import Path

import torch

from xray_lightning.data import XrayDataModule
from xray_lightning.data.synthetic import DEFAULT_COUNTS, main, write_synthetic_dataset


def _histograms(dm: XrayDataModule, split: str) -> torch.Tensor:
    x = torch.cat([b[0] for b in dm.split_dataloader(split)]).float() / 255
    return torch.stack([torch.histc(img, 32, 0, 1) for img in x]) / x[0].numel()


def test_each_stage_is_learnable_from_the_pixels(synthetic_root: Path) -> None:
    """Logistic regression on per-image intensity histograms: >= 80% test accuracy per stage."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: extra threads only add contention
    try:
        _fit_each_stage(synthetic_root)
    finally:
        torch.set_num_threads(threads)


def _fit_each_stage(synthetic_root: Path) -> None:
    for stage in ("normal_vs_infected", "covid_vs_noncovid", "three_class"):
        dm = XrayDataModule(root=synthetic_root, stage=stage, image_size=48)
        x_train, y_train = _histograms(dm, "train"), dm.split_labels("train")
        x_test, y_test = _histograms(dm, "test"), dm.split_labels("test")
        mean, std = x_train.mean(0), x_train.std(0) + 1e-6
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
        model = torch.nn.Linear(x_train.shape[1], dm.num_classes)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        for _ in range(300):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x_train), y_train).backward()
            opt.step()
        acc = float((model(x_test).argmax(1) == y_test).float().mean())
        assert acc >= 0.8, (stage, acc)


def test_kaggle_layout_and_counts(tmp_path: Path) -> None:
    counts = {"train": {"normal": 2, "non-covid": 3, "covid": 1}, "test": {"normal": 1}}
    root = write_synthetic_dataset(tmp_path / "k", counts, image_size=40, layout="kaggle")
    assert len(list((root / "train" / "NORMAL").glob("*.jpeg"))) == 2
    assert len(list((root / "train" / "PNEUMONIA").glob("*bacteria*.jpeg"))) == 3
    assert len(list((root / "train" / "PNEUMONIA").glob("*virus*.jpeg"))) == 1


def test_cli_writes_the_default_layout(tmp_path: Path) -> None:
    assert main([str(tmp_path / "demo"), "--scale", "0.1", "--image-size", "32"]) == 0
    files = list((tmp_path / "demo").rglob("*.jpg"))
    expected = sum(max(1, round(n * 0.1)) for per in DEFAULT_COUNTS.values() for n in per.values())
    assert len(files) == expected
    assert (tmp_path / "demo" / "train" / "infected" / "non-covid" / "0.jpg").is_file()
