"""predict on hostile inputs: every input gets a row, bounded time and memory."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xray_lightning.predict import main

REPO = Path(__file__).resolve().parents[1]
BEST = REPO / "experiments" / "best"
MODEL = ["--stage1", str(BEST / "stage1.ckpt"), "--stage2", str(BEST / "stage2.ckpt")]


def rows(out: str) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in map(json.loads, out.splitlines())}


def good_image(path: Path) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (150, 150), np.uint8)).save(path)
    return path


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny 16-bit PNG whose header claims width x height (the pixels are never there)."""
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17])) & 0xFFFFFFFF
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))
    return path


def test_fifo_loop_huge_and_overlong_inputs_each_get_an_error_row(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    good_image(folder / "good.png")
    os.mkfifo(folder / "pipe.png")
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    png_claiming(folder / "huge.png", 13000, 13000)
    with open(folder / "sparse.png", "wb") as handle:  # 5 GB, no blocks on disk
        handle.truncate(5 * 2**30)
    deep = folder / "deep"
    deep.mkdir()
    # nested past PATH_MAX (4096): build it with relative mkdirs from inside
    cwd = os.getcwd()
    try:
        os.chdir(deep)
        for _ in range(25):
            name = "d" * 200
            os.mkdir(name)
            os.chdir(name)
        good_image(Path("buried.png"))
    finally:
        os.chdir(cwd)
    code = main([*MODEL, "--json", str(folder)])
    captured = capsys.readouterr()
    found = rows(captured.out)
    assert code == 1
    assert found["good.png"]["error"] is None and found["good.png"]["label"] is not None
    assert "not a regular file (a FIFO)" in found["pipe.png"]["error"]
    assert "symlink loop" in found["loop"]["error"]
    assert (
        "more than the limit" in found["huge.png"]["error"]
        and "pixels" in found["huge.png"]["error"]
    )
    assert "5,368,709,120 bytes" in found["sparse.png"]["error"]
    overlong = [r for r in found.values() if "too long" in (r["error"] or "").lower()]
    assert overlong, found.keys()


def peak_rss_kib(image: Path) -> int:
    """Peak RSS (KiB) of a fresh process that labels ``image`` with the shipped model."""
    code = (
        "import resource, sys\n"
        "from xray_lightning.predict import main\n"
        f"status = main({MODEL + ['--json', str(image)]!r})\n"
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=180, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.rsplit("PEAK", 1)[1])


def test_peak_memory_of_a_large_16_bit_image_stays_bounded(tmp_path: Path) -> None:
    """A 30-Mpx 16-bit PNG (under the 40-Mpx limit) adds at most ~0.4 GB to the process's own
    footprint (torch + Lightning + the model, ~1 GB), measured against a 150x150 image."""
    big = tmp_path / "big16.png"
    Image.fromarray(np.full((5000, 6000), 30000, np.uint16)).save(big)
    small = good_image(tmp_path / "small.png")
    added_kib = peak_rss_kib(big) - peak_rss_kib(small)
    assert added_kib < 400 * 2**10, f"decoding added {added_kib / 2**10:.0f} MiB"
