"""load_image: one clear BadImageError per kind of bad file, and correct conversion otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xray_lightning.data import BadImageError, load_image
from xray_lightning.data.synthetic import make_image


def _gray(seed: int = 0, size: int = 150) -> np.ndarray:
    return make_image(1, np.random.default_rng(seed), size)


def write_bad_files(folder: Path) -> dict[str, str]:
    """Write one file of each bad kind into ``folder``; return {name: expected reason part}."""
    folder.mkdir(parents=True, exist_ok=True)
    gray = _gray()
    (folder / "zero.jpg").write_bytes(b"")
    Image.fromarray(gray).save(folder / "full.jpg", quality=90)
    data = (folder / "full.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "full.jpg").unlink()
    (folder / "text.jpg").write_text("not an image at all\n")
    Image.fromarray(np.stack([gray] * 3, -1)).save(folder / "rgb.jpg")
    Image.fromarray(np.stack([gray] * 4, -1)).save(folder / "rgba.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(folder / "deep.jpg", format="PNG")
    Image.fromarray(_gray(size=120)).save(folder / "small.jpg")
    return {
        "zero.jpg": "empty file",
        "truncated.jpg": "truncated",
        "text.jpg": "not an image",
        "rgb.jpg": "mode RGB, expected L",
        "rgba.png": "mode RGBA, expected L",
        "deep.jpg": "16-bit",
        "small.jpg": "size 120x120, expected 150x150",
    }


def test_good_image_round_trips(tmp_path: Path) -> None:
    gray = _gray()
    Image.fromarray(gray).save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png", 150, expect_size=150, expect_mode="L")
    assert out.dtype == torch.uint8 and out.shape == (150, 150)
    assert torch.equal(out, torch.from_numpy(gray))
    small = load_image(tmp_path / "a.png", 64)
    assert small.shape == (64, 64)
    assert abs(small.float().mean() - out.float().mean()) < 2.0


@pytest.mark.parametrize(
    "name",
    ["zero.jpg", "truncated.jpg", "text.jpg", "rgb.jpg", "rgba.png", "deep.jpg", "small.jpg"],
)
def test_bad_files_raise_one_clear_error(tmp_path: Path, name: str) -> None:
    expected = write_bad_files(tmp_path)
    before = (tmp_path / name).read_bytes()
    with pytest.raises(BadImageError) as err:
        load_image(tmp_path / name, 150, expect_size=150, expect_mode="L")
    assert err.value.path == tmp_path / name
    assert expected[name] in err.value.reason
    assert str(tmp_path / name) in str(err.value)
    assert (tmp_path / name).read_bytes() == before  # never modified


def test_any_mode_and_size_are_converted_when_not_expected(tmp_path: Path) -> None:
    write_bad_files(tmp_path)
    gray = torch.from_numpy(_gray()).float()
    for name in ("rgb.jpg", "rgba.png", "deep.jpg"):
        out = load_image(tmp_path / name, 150)
        assert out.dtype == torch.uint8 and out.shape == (150, 150)
        # 16-bit is scaled (not clipped to white): the grayscale content survives
        assert (out.float() - gray).abs().mean() < 8.0, name  # JPEG loss only
    assert load_image(tmp_path / "small.jpg", 150).shape == (150, 150)
    for name in ("zero.jpg", "truncated.jpg", "text.jpg"):
        with pytest.raises(BadImageError):
            load_image(tmp_path / name, 150)


def test_missing_file_and_bad_mode_argument(tmp_path: Path) -> None:
    with pytest.raises(BadImageError, match="cannot read"):
        load_image(tmp_path / "nope.jpg", 150)
    Image.fromarray(_gray()).save(tmp_path / "a.jpg")
    with pytest.raises(ValueError, match="expect_mode"):
        load_image(tmp_path / "a.jpg", 150, expect_mode="RGB")
