"""Data-path benchmark: images/s from XrayDataModule's train loader vs a naive PIL loader.

    python -m xray_lightning.bench.data [--root DIR] [--device cpu|cuda] [--threads N] [--json]
        [--repeats N] [--interpolation bilinear|nearest]

Both paths deliver the same thing: augmented (rotation/scale/translate, brightness/contrast),
normalised float batches [32, 1, 150, 150] of the train split. The DataModule decodes once into
memory and augments whole batches with tensor ops; the naive baseline opens each JPEG with PIL
and runs torchvision's per-item PIL transforms in a standard Dataset + DataLoader.
Each rate is the median of ``--repeats`` timed passes (the DataModule's and the naive loaders'
passes interleaved, so a load change hits both). Also reports the DataModule's cold setup
(decode) and warm setup (cache hit) times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from torchvision import transforms as T

from xray_lightning.bench.naive import PILImageDataset, pil_transform
from xray_lightning.data import XrayDataModule
from xray_lightning.data.layout import find_dataset
from xray_lightning.data.synthetic import write_synthetic_dataset
from xray_lightning.exits import run_cli

AUG = {"enabled": True, "rotation": 10.0, "scale": 0.1, "translate": 0.05}
AUG |= {"brightness": 0.1, "contrast": 0.1}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(batches, n_batches: int, step, device: torch.device) -> float:
    """Images/s over up to n_batches batches (after one warm-up batch), ready on ``device``."""
    it = iter(batches)
    step(next(it))
    _sync(device)
    n, start = 0, time.perf_counter()
    for _, batch in zip(range(n_batches), it, strict=False):
        x, _ = step(batch)
        n += x.shape[0]
    _sync(device)
    return n / (time.perf_counter() - start)


def _to(batch, device: torch.device):
    return [t.to(device, non_blocking=True) for t in batch]


def find_root(arg: str | None) -> tuple[Path, str]:
    root, source = find_dataset(arg)
    if root is not None and (source == "given" or root.is_dir()):
        return root, source
    tmp = Path(tempfile.mkdtemp(prefix="xray-bench-")) / "dataset"
    counts = {s: {"normal": 300, "non-covid": 500, "covid": 300} for s in ("train",)}
    counts |= {"test": {"normal": 10, "non-covid": 10, "covid": 10}}
    counts |= {"val": {"normal": 2, "non-covid": 2, "covid": 2}}
    return write_synthetic_dataset(tmp, counts), "synthetic"


def run(
    root: Path,
    batches: int,
    naive_batches: int,
    batch_size: int,
    device: torch.device,
    repeats: int = 1,
    interpolation: str = "bilinear",
) -> dict[str, Any]:
    """Time both loaders; batches end as float tensors on ``device`` (as in training, where the
    DataModule's transforms run in ``on_after_batch_transfer``, after the move)."""
    out: dict[str, Any] = {"root": str(root), "batch_size": batch_size, "device": str(device)}
    out |= {"repeats": repeats, "interpolation": interpolation}
    aug = AUG | {"interpolation": interpolation}
    with tempfile.TemporaryDirectory(prefix="xray-bench-cache-") as cache:
        timings = []
        for _ in range(2):
            dm = XrayDataModule(root=root, augmentation=aug, batch_size=batch_size, cache_dir=cache)
            dm.setup("fit")
            timings.append(dm.data.info["setup_s"])
        out["setup_cold_s"], out["setup_warm_s"] = (round(t, 3) for t in timings)
    loader = dm.train_dataloader()
    step = lambda b: dm.transform_batch(_to(b, device), train=True)  # noqa: E731
    spec = dm.preprocess_spec()
    augment = (
        T.RandomAffine(degrees=10, translate=(0.05, 0.05), scale=(0.9, 1.1)),
        T.ColorJitter(brightness=0.1, contrast=0.1),
    )
    transform = pil_transform(dm.image_size, spec["mean"], spec["std"], *augment)
    naive = PILImageDataset(dm.split_paths("train"), dm.split_labels("train"), transform)
    to_dev = lambda b: _to(b, device)  # noqa: E731
    naive_loaders = {
        workers: DataLoader(naive, batch_size=batch_size, shuffle=True, num_workers=workers)
        for workers in (0, 2)
    }
    rates: dict[str, list[float]] = {"datamodule": [], "naive_w0": [], "naive_w2": []}
    for _ in range(repeats):
        rates["datamodule"].append(_rate(loader, batches, step, device))
        for workers, dl in naive_loaders.items():
            rates[f"naive_w{workers}"].append(_rate(dl, naive_batches, to_dev, device))
    for name, values in rates.items():
        out[f"{name}_img_s"] = round(statistics.median(values), 1)
    out["datamodule_ms_per_batch"] = round(batch_size / out["datamodule_img_s"] * 1e3, 3)
    best_naive = max(out["naive_w0_img_s"], out["naive_w2_img_s"])
    out["speedup_vs_best_naive"] = round(out["datamodule_img_s"] / best_naive, 1)
    out["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores"
    out["torch_threads"] = torch.get_num_threads()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root",
        help="dataset (default: XRAY_DATA_ROOT, ../shared/dataset, "
        "else a synthetic one in a temporary folder)",
    )
    parser.add_argument("--batches", type=int, default=100, help="DataModule batches timed")
    parser.add_argument("--naive-batches", type=int, default=30, help="naive batches timed")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu", help="where batches end up: cpu, cuda, ...")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per loader (median)")
    parser.add_argument(
        "--interpolation",
        choices=("bilinear", "nearest"),
        default="bilinear",
        help="the DataModule's augmentation warp (data.augmentation.interpolation)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    root, source = find_root(args.root)
    device = torch.device(args.device)
    result = run(
        root,
        args.batches,
        args.naive_batches,
        args.batch_size,
        device,
        args.repeats,
        args.interpolation,
    )
    result["root_source"] = source
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    run_cli(main)
