"""Shared fixtures: a small synthetic dataset (session-scoped) and the real dataset's root."""

from __future__ import annotations

from pathlib import Path

import pytest

from xray_lightning.data.layout import find_dataset
from xray_lightning.data.synthetic import write_synthetic_dataset

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic dataset in the default layout (148 150x150 grayscale JPEGs).

    Shared by the whole session: treat it as read-only (copy it to corrupt it).
    """
    return write_synthetic_dataset(tmp_path_factory.mktemp("synthetic") / "dataset")


@pytest.fixture(scope="session")
def synthetic_kaggle_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic dataset in the Kaggle chest_xray layout (varied sizes, some RGB)."""
    return write_synthetic_dataset(
        tmp_path_factory.mktemp("kaggle") / "chest_xray", layout="kaggle"
    )


def find_real_root() -> Path | None:
    """The real dataset as the package finds it (``data.layout.find_dataset``); None when absent."""
    root, _ = find_dataset()
    return root if root is not None and (root / "train").is_dir() else None


@pytest.fixture(scope="session")
def real_root() -> Path:
    """The real dataset's root, or skip (with the path tried) when it is absent."""
    root = find_real_root()
    if root is None:
        tried = find_dataset()[0] or find_dataset()[1]
        pytest.skip(f"real dataset not found at {tried} (set XRAY_DATA_ROOT to run this test)")
    return root
