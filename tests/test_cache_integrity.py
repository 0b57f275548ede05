"""A corrupted decoded-image cache file is rebuilt with one warning, never used."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from xray_lightning.data.cache import decode_dataset


def relpaths_of(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.jpg"))


def test_flipped_payload_bytes_are_rebuilt(synthetic_root: Path, tmp_path: Path) -> None:
    rel = relpaths_of(synthetic_root)[:20]
    first = decode_dataset(synthetic_root, rel, 64, cache_dir=tmp_path)
    assert not first.cache_hit and first.cache_file is not None and first.cache_file.is_file()
    # flip pixels inside a valid cache file: it still loads, with other pixels
    blob = torch.load(first.cache_file, weights_only=True)
    blob["images"][3, 10:20, 10:20] ^= 0xFF
    torch.save(blob, first.cache_file)
    with pytest.warns(UserWarning, match="failed its integrity check") as record:
        second = decode_dataset(synthetic_root, rel, 64, cache_dir=tmp_path)
    assert len([w for w in record if "integrity" in str(w.message)]) == 1
    assert not second.cache_hit
    assert torch.equal(second.images, first.images)  # rebuilt from the files
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt cache is clean again
        third = decode_dataset(synthetic_root, rel, 64, cache_dir=tmp_path)
    assert third.cache_hit and torch.equal(third.images, first.images)
