"""Bad files in a dataset: one error naming every file (default), or skip them with one warning."""

from __future__ import annotations

import hashlib
import shutil
import warnings
from pathlib import Path

import pytest
from test_data_images import write_bad_files

from xray_lightning.data import BadDataError, BadFilesError, BadFileWarning, XrayDataModule


def _snapshot(root: Path) -> dict[str, tuple[str, float]]:
    return {
        str(p.relative_to(root)): (hashlib.md5(p.read_bytes()).hexdigest(), p.stat().st_mtime)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture()
def corrupted_root(synthetic_root: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = Path(shutil.copytree(synthetic_root, tmp_path / "ds"))
    reasons = write_bad_files(root / "train" / "infected" / "covid")
    renamed = {}
    for name, why in reasons.items():  # keep names the loader will pick up, one per kind
        target = root / "train" / "infected" / "covid" / f"bad_{Path(name).stem}.jpg"
        (root / "train" / "infected" / "covid" / name).rename(target)
        renamed[f"train/infected/covid/{target.name}"] = why
    return root, renamed


def test_default_is_one_error_naming_every_bad_file(corrupted_root, tmp_path: Path) -> None:
    root, expected = corrupted_root
    before = _snapshot(root)
    dm = XrayDataModule(root=root, stage="three_class", cache_dir=tmp_path / "cache")
    with pytest.raises(BadFilesError) as err:
        dm.setup("fit")
    found = {str(p.relative_to(root)): why for p, why in err.value.problems}
    assert set(found) == set(expected)
    for rel, why in expected.items():
        assert why in found[rel]
        assert rel in str(err.value)
    assert "data.on_bad_file=skip" in str(err.value)
    assert isinstance(err.value, BadDataError)
    assert _snapshot(root) == before


def test_skip_loads_the_rest_and_warns_once(corrupted_root, synthetic_root: Path) -> None:
    root, expected = corrupted_root
    before = _snapshot(root)
    dm = XrayDataModule(root=root, stage="three_class", on_bad_file="skip")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm.setup("fit")
        dm.setup("test")  # idempotent: no second warning
    bad_warnings = [w for w in caught if issubclass(w.category, BadFileWarning)]
    assert len(bad_warnings) == 1
    for rel in expected:
        assert rel in str(bad_warnings[0].message)
    clean = XrayDataModule(root=synthetic_root, stage="three_class").summary()
    got = dm.summary()
    for cls in dm.class_names:  # every good train file is in train or val, bad ones nowhere
        assert got["train"][cls] + got["val"][cls] == clean["train"][cls] + clean["val"][cls]
    assert got["test"] == clean["test"]
    assert not any(p.name.startswith("bad_") for s in ("train", "val") for p in dm.split_paths(s))
    # the hold-out does not depend on which files turned out bad
    fixed = Path(shutil.copytree(root, root.parent / "fixed"))
    good = next((fixed / "train" / "infected" / "covid").glob("[0-9]*.jpg")).read_bytes()
    for rel in expected:
        (fixed / rel).write_bytes(good)
    ref = XrayDataModule(root=fixed, stage="three_class")
    ref_val = [p.name for p in ref.split_paths("val") if not p.name.startswith("bad_")]
    assert [p.name for p in dm.split_paths("val")] == ref_val
    assert _snapshot(root) == before


def test_kaggle_pneumonia_file_without_kind_is_bad(synthetic_kaggle_root: Path, tmp_path) -> None:
    root = Path(shutil.copytree(synthetic_kaggle_root, tmp_path / "k"))
    src = next((root / "train" / "PNEUMONIA").glob("*bacteria*"))
    shutil.copy(src, root / "train" / "PNEUMONIA" / "person999_unknown.jpeg")
    with pytest.raises(BadFilesError, match="neither 'bacteria' nor 'virus'"):
        XrayDataModule(root=root, layout="kaggle", expect_size=None, expect_mode=None).setup()


def test_rgb_and_other_sizes_are_bad_unless_allowed(synthetic_kaggle_root: Path) -> None:
    with pytest.raises(BadFilesError, match="expected L"):
        XrayDataModule(root=synthetic_kaggle_root, expect_size=None).setup()
    with pytest.raises(BadFilesError, match="expected 150x150"):
        XrayDataModule(root=synthetic_kaggle_root, expect_mode=None).setup()
    dm = XrayDataModule(root=synthetic_kaggle_root, expect_size=None, expect_mode=None)
    dm.setup()
    assert dm.data.images.shape[-2:] == (150, 150)
