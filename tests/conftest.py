"""Shared fixtures: a small synthetic dataset (session-scoped) and the real dataset's root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
    """$XRAY_DATA_ROOT, else ../shared/dataset relative to the repo; None when absent."""
    env = os.environ.get("XRAY_DATA_ROOT")
    candidate = Path(env) if env else REPO.parent / "shared" / "dataset"
    return candidate if (candidate / "train").is_dir() else None


@pytest.fixture(scope="session")
def real_root() -> Path:
    """The real dataset's root, or skip (with the path tried) when it is absent."""
    root = find_real_root()
    if root is None:
        tried = os.environ.get("XRAY_DATA_ROOT") or REPO.parent / "shared" / "dataset"
        pytest.skip(f"real dataset not found at {tried} (set XRAY_DATA_ROOT to run this test)")
    return root
