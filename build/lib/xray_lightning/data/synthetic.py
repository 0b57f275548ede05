"""A small synthetic chest X-ray dataset in the real layouts, for tests and demo runs.

Every image is a stylised chest (body, two dark lung fields, spine, ribs, noise). The class
decides the opacities a small CNN can learn: normal lungs are clear; non-covid (bacterial-like)
has one dense focal consolidation low in one lung; covid (viral-like) has many faint patchy
opacities spread over both lungs.

    python -m xray_lightning.data.synthetic OUT_DIR [--layout xray|kaggle] [--seed 0] [--scale 1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from xray_lightning.exits import run_cli

from .layout import CLASSES3

DEFAULT_COUNTS: dict[str, dict[str, int]] = {
    "train": {"normal": 30, "non-covid": 40, "covid": 30},
    "test": {"normal": 12, "non-covid": 12, "covid": 12},
    "val": {"normal": 4, "non-covid": 4, "covid": 4},
}
_XRAY_FOLDERS = {"normal": "normal", "non-covid": "infected/non-covid", "covid": "infected/covid"}


def _blob(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float) -> np.ndarray:
    return np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2.0 * r * r)))


def make_image(label: int, rng: np.random.Generator, size: int = 150) -> np.ndarray:
    """A synthetic chest image of class ``label`` (0 normal, 1 non-covid, 2 covid): uint8 [H,W]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size  # unit square coordinates
    dy, dx = rng.uniform(-0.03, 0.03, size=2)
    img = np.full((size, size), 20.0)
    body = ((yy - 0.55 - dy) / 0.5) ** 2 + ((xx - 0.5 - dx) / 0.42) ** 2 < 1.0
    img[body] = 150.0 + rng.uniform(-15, 15)
    lungs = np.zeros_like(img, dtype=bool)
    centres = []
    for side in (-1, 1):
        cy, cx = 0.5 + dy, 0.5 + dx + side * rng.uniform(0.17, 0.2)
        ry, rx = rng.uniform(0.26, 0.3), rng.uniform(0.1, 0.12)
        lungs |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1.0
        centres.append((cy, cx, ry, rx))
    img[lungs] = 60.0 + rng.uniform(-10, 10)
    img += 25.0 * (np.sin(yy * 2 * np.pi * rng.uniform(9, 11)) > 0.6) * lungs  # ribs
    img += 60.0 * (np.abs(xx - 0.5 - dx) < 0.03) * body  # spine
    if label == 1:  # one dense focal consolidation, low in one lung
        cy, cx, ry, rx = centres[rng.integers(2)]
        by, bx = cy + rng.uniform(0.05, 0.18), cx + rng.uniform(-0.4, 0.4) * rx
        img += 85.0 * _blob(yy, xx, by, bx, rng.uniform(0.07, 0.1)) * lungs
    elif label == 2:  # many faint patchy opacities over both lungs
        patches = np.zeros_like(img)
        for cy, cx, ry, rx in centres:
            for _ in range(rng.integers(6, 10)):
                py, px = cy + rng.uniform(-0.8, 0.8) * ry, cx + rng.uniform(-0.8, 0.8) * rx
                patches += _blob(yy, xx, py, px, rng.uniform(0.02, 0.035))
        img += 35.0 * np.clip(patches, 0, 1.5) * lungs
    img += rng.normal(0.0, 6.0, size=img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _kaggle_name(label: int, i: int) -> tuple[str, str]:
    if label == 0:
        return "NORMAL", f"IM-{i:04d}-0001.jpeg"
    kind = "bacteria" if label == 1 else "virus"
    return "PNEUMONIA", f"person{i}_{kind}_{i + 1}.jpeg"


def write_synthetic_dataset(
    root: Path | str,
    counts: dict[str, dict[str, int]] | None = None,
    image_size: int = 150,
    seed: int = 0,
    layout: str = "xray",
    quality: int = 92,
) -> Path:
    """Write a dataset under ``root`` and return ``root``.

    ``counts``: {official split: {class name: n}} (default DEFAULT_COUNTS). The ``xray`` layout
    writes ``image_size`` square 8-bit grayscale JPEGs named 0.jpg, 1.jpg, ...; ``kaggle`` writes
    NORMAL/ and PNEUMONIA/ (bacteria/virus in names) with varied sizes, every third image RGB.
    """
    if layout not in ("xray", "kaggle"):
        raise ValueError(f"layout must be xray or kaggle; got {layout!r}")
    root = Path(root)
    counts = counts or DEFAULT_COUNTS
    rng = np.random.default_rng(seed)
    serial = 0
    for split, per_class in counts.items():
        for name, n in per_class.items():
            if name not in CLASSES3:
                raise ValueError(f"unknown class {name!r}; expected one of {CLASSES3}")
            label = CLASSES3.index(name)
            for i in range(n):
                if layout == "xray":
                    folder, fname = _XRAY_FOLDERS[name], f"{i}.jpg"
                    img = Image.fromarray(make_image(label, rng, image_size), mode="L")
                else:
                    folder, fname = _kaggle_name(label, serial)
                    size = int(image_size * rng.uniform(1.0, 1.6))
                    img = Image.fromarray(make_image(label, rng, size), mode="L")
                    img = img.resize((size, int(size * rng.uniform(0.8, 1.0))))
                    if serial % 3 == 0:
                        img = img.convert("RGB")
                serial += 1
                out = root / split / folder / fname
                out.parent.mkdir(parents=True, exist_ok=True)
                img.save(out, format="JPEG", quality=quality)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write (must not exist or be empty)")
    parser.add_argument("--layout", choices=("xray", "kaggle"), default="xray")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the default counts")
    parser.add_argument("--image-size", type=int, default=150)
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} exists and is not empty")
    counts = {
        s: {c: max(1, round(n * args.scale)) for c, n in per.items()}
        for s, per in DEFAULT_COUNTS.items()
    }
    write_synthetic_dataset(args.out, counts, args.image_size, args.seed, args.layout)
    total = sum(sum(per.values()) for per in counts.values())
    print(f"wrote {total} synthetic images ({args.layout} layout) to {args.out}")
    return 0


if __name__ == "__main__":
    run_cli(main)
