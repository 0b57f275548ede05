"""Finding and labelling files: both layouts, and the errors for missing or malformed folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from xray_lightning.data import DatasetNotFoundError, LayoutError, XrayDataModule
from xray_lightning.data.layout import detect_layout, index_dataset, kaggle_label, natural_key
from xray_lightning.data.synthetic import DEFAULT_COUNTS


def test_index_default_layout(synthetic_root: Path) -> None:
    index = index_dataset(synthetic_root)
    assert index.layout == "xray"
    assert len(index) == sum(sum(per.values()) for per in DEFAULT_COUNTS.values())
    pairs = list(zip(index.splits, index.labels, strict=True))
    assert pairs.count(("train", 1)) == DEFAULT_COUNTS["train"]["non-covid"]
    assert pairs.count(("val", 2)) == DEFAULT_COUNTS["val"]["covid"]
    normal = [r for r in index.relpaths if r.startswith("train/normal/")]
    assert normal[:3] == ["train/normal/0.jpg", "train/normal/1.jpg", "train/normal/2.jpg"]
    assert not index.problems


def test_index_kaggle_layout(synthetic_kaggle_root: Path) -> None:
    index = index_dataset(synthetic_kaggle_root)
    assert index.layout == "kaggle"
    for rel, label in zip(index.relpaths, index.labels, strict=True):
        expected = 0 if "/NORMAL/" in rel else (1 if "bacteria" in rel else 2)
        assert label == expected, rel


def test_layout_can_be_forced_and_checked(synthetic_root: Path) -> None:
    with pytest.raises(LayoutError, match="missing class folder"):
        index_dataset(synthetic_root, layout="kaggle")
    with pytest.raises(ValueError, match="data.layout"):
        index_dataset(synthetic_root, layout="coco")


def test_kaggle_label_and_natural_order() -> None:
    assert kaggle_label("person1_bacteria_2.jpeg") == 1
    assert kaggle_label("person1_virus_2.jpeg") == 2
    assert kaggle_label("person1_2.jpeg") is None
    assert sorted(["10.jpg", "2.jpg", "1.jpg"], key=natural_key) == ["1.jpg", "2.jpg", "10.jpg"]


def test_missing_root_says_what_was_tried_and_how_to_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError) as err:
        XrayDataModule(root=missing).setup()
    msg = str(err.value)
    assert str(missing) in msg
    assert "infected/non-covid" in msg  # the expected layout
    for hint in ("XRAY_DATA_ROOT", "data.root=", "make data DATASET="):
        assert hint in msg


def test_unknown_layout(tmp_path: Path) -> None:
    (tmp_path / "pictures").mkdir()
    (tmp_path / "pictures" / "a.jpg").write_bytes(b"x")
    with pytest.raises(LayoutError, match="Cannot tell the layout"):
        detect_layout(tmp_path)


def test_missing_class_folder_and_empty_split(synthetic_root: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(synthetic_root, tmp_path / "ds"))
    shutil.rmtree(root / "train" / "infected" / "covid")
    for f in (root / "test").rglob("*.jpg"):
        f.unlink()
    with pytest.raises(LayoutError) as err:
        XrayDataModule(root=root).setup()
    problems = {str(p.relative_to(root)): why for p, why in err.value.problems}
    assert problems == {
        "train/infected/covid": "missing class folder (xray layout)",
        "test": "empty split: no image files",
    }
    assert "train/infected/covid" in str(err.value) and "empty split" in str(err.value)


def test_missing_split_folder(synthetic_root: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(synthetic_root, tmp_path / "ds"))
    shutil.rmtree(root / "val")
    with pytest.raises(LayoutError, match="missing split folder"):
        index_dataset(root)
