"""The real dataset: official counts, hold-out properties, duplicates, cache speed."""

from __future__ import annotations

from pathlib import Path

import pytest

from xray_lightning.data import STAGES, XrayDataModule
from xray_lightning.data.audit import audit_dataset

pytestmark = pytest.mark.integration

OFFICIAL = {
    "train": {"normal": 1341, "non-covid": 2530, "covid": 1345},
    "test": {"normal": 234, "non-covid": 242, "covid": 139},
    "val": {"normal": 8, "non-covid": 8, "covid": 9},
}


@pytest.fixture(scope="module")
def modules(real_root: Path, tmp_path_factory) -> dict[str, XrayDataModule]:
    cache = tmp_path_factory.mktemp("cache")
    out = {}
    for stage in STAGES:
        dm = XrayDataModule(root=real_root, stage=stage, cache_dir=cache)
        dm.setup("fit")
        out[stage] = dm
    return out


def test_official_counts(modules) -> None:
    s = modules["three_class"].summary()
    for cls, n in OFFICIAL["train"].items():
        assert s["train"][cls] + s["val"][cls] == n
        # stratified; duplicate groups pulled to one side move a few items (see below)
        assert abs(s["val"][cls] - round(0.1 * n)) <= 5
    assert s["test"] == OFFICIAL["test"]
    assert s["showcase"] == OFFICIAL["val"]


def test_holdout_disjoint_and_identical_across_stages(modules) -> None:
    three = modules["three_class"]
    val, train = set(three.split_paths("val")), set(three.split_paths("train"))
    assert not val & train and len(val) + len(train) == sum(OFFICIAL["train"].values())
    assert set(modules["normal_vs_infected"].split_paths("val")) == val
    cvn = modules["covid_vs_noncovid"]
    assert set(cvn.split_paths("val")) == {p for p in val if p.parent.parent.name == "infected"}
    assert not set(cvn.split_paths("val")) & set(modules["normal_vs_infected"].split_paths("train"))
    # 5 duplicate groups were drawn across the hold-out line; each went wholly to train
    assert cvn.summary()["val"] == {"non-covid": 249, "covid": 133}


def test_cache_hit_is_fast(modules, real_root: Path) -> None:
    cache = Path(modules["three_class"].data.info["cache_file"]).parent
    warm = XrayDataModule(root=real_root, cache_dir=cache)
    warm.setup()
    assert warm.data.info["cache_hit"]
    assert warm.data.info["setup_s"] < 4.0  # < 2 s on an idle 2-core machine; slack for load


def test_audit_finds_the_known_duplicates(real_root: Path) -> None:
    report = audit_dataset(real_root)
    assert report["bad_files"] == []
    within = report["duplicates"]["within_splits"]
    assert len(within) == 30  # 30 groups: 28 pairs and 2 triples
    assert sorted(len(g) for g in within).count(3) == 2
    assert ["test/normal/138.jpg", "test/normal/139.jpg"] in within
    assert report["duplicates"]["across_splits"] == []


def test_no_duplicate_straddles_train_and_val(modules, real_root: Path) -> None:
    three = modules["three_class"]
    side = {
        p.relative_to(real_root.resolve()).as_posix(): s
        for s in ("train", "val")
        for p in three.split_paths(s)
    }
    groups = audit_dataset(real_root)["duplicates"]["within_splits"]
    train_groups = [g for g in groups if g[0].startswith("train/")]
    assert len(train_groups) == 24
    assert all(len({side[f] for f in g}) == 1 for g in train_groups)
