"""Does a test image keep its label when it is exported another way? (issue 12, item 2)

Writes each official-test image again as: PNG resized to 224 px, JPEG re-encoded at quality 50,
RGB PNG, 16-bit PNG, rotated 5 degrees (PNG); labels originals and variants with ``predict``'s
own path (``predict.predict_files``) and reports, per variant, the share of labels kept and the
3-class accuracy. A measurement on test only: nothing is chosen from it.

    python experiments/robustness/exports.py [--model DIR] --out experiments/robustness/exports.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from xray_lightning import runs
from xray_lightning.data.layout import find_dataset
from xray_lightning.decision import CLASS_NAMES
from xray_lightning.labeller import Labeller
from xray_lightning.predict import predict_files

Variant = Callable[[Image.Image, Path], Path]


def _png(image: Image.Image, path: Path) -> Path:
    image.save(path.with_suffix(".png"))
    return path.with_suffix(".png")


VARIANTS: dict[str, Variant] = {
    "resized_224_png": lambda im, p: _png(im.resize((224, 224), Image.Resampling.BICUBIC), p),
    "jpeg_q50": lambda im, p: (im.save(p.with_suffix(".jpg"), quality=50), p.with_suffix(".jpg"))[
        1
    ],
    "rgb_png": lambda im, p: _png(im.convert("RGB"), p),
    "16bit_png": lambda im, p: _png(
        Image.fromarray((np.asarray(im, dtype=np.uint16) * 257).astype(np.uint16)), p
    ),
    "rotated_5deg_png": lambda im, p: _png(im.rotate(5, resample=Image.Resampling.BILINEAR), p),
}


def true_label(path: Path) -> int:
    parts = path.parts
    if "normal" in parts:
        return 0
    return 2 if "covid" in parts else 1


def labels_of(labeller: Labeller, files: list[Path]) -> list[int]:
    names = list(CLASS_NAMES)
    rows = list(predict_files(labeller, files))
    bad = [r for r in rows if r.error]
    if bad:
        raise SystemExit(
            f"{len(bad)} files could not be labelled, e.g. {bad[0].path}: {bad[0].error}"
        )
    return [names.index(r.label) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model folder (default: the shipped one)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    root, _ = find_dataset()
    source = runs.cascade_source(model=args.model)
    labeller = Labeller.from_checkpoints(
        source.stage1_checkpoints, source.stage2_checkpoints, **source.thresholds
    )
    files = sorted(p for p in (root / "test").rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    truth = np.array([true_label(p.relative_to(root)) for p in files])
    started = time.time()
    original = np.array(labels_of(labeller, files))
    result = {
        "model": str(source.stage1.parent),
        "images": len(files),
        "original": {"acc": float((original == truth).mean())},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, write in VARIANTS.items():
            folder = Path(tmp) / name
            folder.mkdir()
            written = []
            for i, path in enumerate(files):
                with Image.open(path) as image:
                    written.append(write(image.convert("L"), folder / f"{i:04d}"))
            labels = np.array(labels_of(labeller, written))
            result[name] = {
                "acc": float((labels == truth).mean()),
                "kept": float((labels == original).mean()),
                "changed": int((labels != original).sum()),
            }
            print(name, result[name], flush=True)
    result["seconds"] = round(time.time() - started, 1)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
