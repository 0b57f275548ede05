"""Training and inference speed: our Lightning path vs the report's naive way, per model.

    python -m xray_lightning.bench.train [--models cnn fast cnn_bn] [--batch-size 32]
        [--limit-batches 20] [--warmup-batches 3] [--repeats 3] [--max-load 2.5]
        [--device cpu|cuda] [--data-on-device] [--compile MODE] [--epochs N]
        [--root DIR | --synthetic] [--out results.json] [--json]

For each model and repeat: training images/s, inference images/s, epoch wall time and peak
memory of (1) our path (``xray_lightning.bench.ours``: the composed config, XrayDataModule and
the LightningModule through a pl.Trainer, precision and memory format ``auto``) and (2) the
naive baseline (``xray_lightning.bench.naive``: PIL per image in a standard DataLoader, plain
fp32 loop). Every measurement carries the load average before and after it; the summary is the
median over repeats. ``--limit-batches 0`` times whole epochs (``--epochs`` of them; the epoch
time reported is then the median of the epochs after the first).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate

from xray_lightning.bench.machine import (
    PeakMemory,
    load_average,
    machine_info,
    train_flops_per_image,
    wait_for_load,
)
from xray_lightning.bench.naive import (
    PILImageDataset,
    infer_plain,
    naive_loader,
    pil_transform,
    train_plain,
)
from xray_lightning.bench.ours import bench_config, infer_ours, train_ours
from xray_lightning.builders import resolve_hardware
from xray_lightning.errors import XrayLightningError
from xray_lightning.exits import run_cli

REPO = Path(__file__).resolve().parents[2]
# The real dataset's counts (dataset README): --synthetic writes the same number of images.
REAL_COUNTS = {
    "train": {"normal": 1341, "non-covid": 2530, "covid": 1345},
    "test": {"normal": 234, "non-covid": 242, "covid": 139},
    "val": {"normal": 8, "non-covid": 8, "covid": 9},
}
PATHS = ("ours", "naive")


class BenchError(XrayLightningError):
    """The benchmark cannot run as asked (no dataset, bad option)."""


def find_root(root: Path | None, synthetic: bool, workdir: Path) -> tuple[Path, str]:
    """The dataset to time: --root, $XRAY_DATA_ROOT, data/dataset, ../shared/dataset; or a
    synthetic one of the real dataset's size (``synthetic``, for machines without the data)."""
    if synthetic:
        from xray_lightning.data.synthetic import write_synthetic_dataset

        return write_synthetic_dataset(workdir / "dataset", REAL_COUNTS), "synthetic"
    from xray_lightning.data.layout import find_dataset

    path, source = find_dataset(root)
    if path is None:
        raise BenchError(
            f"no dataset found (tried {source}): pass --root DIR, set XRAY_DATA_ROOT, or use "
            "--synthetic"
        )
    if not (path / "train").is_dir():
        source = "--root" if source == "given" else source
        raise BenchError(f"no dataset at {path} ({source}): expected a train/ folder in it")
    return path, "--root" if source == "given" else source


def flop_rates(flops_per_image: float, img_s: float) -> dict[str, float]:
    """GFLOP per training image and the achieved GFLOP/s at ``img_s``."""
    return {
        "train_gflop_per_image": round(flops_per_image / 1e9, 4),
        "achieved_gflops": round(flops_per_image * img_s / 1e9, 1),
    }


def measure(
    args: argparse.Namespace, model: str, root: Path, device: torch.device, workdir: Path
) -> list[dict[str, Any]]:
    """One repeat for one model: ours train, ours inference, then the naive ones."""
    records: list[dict[str, Any]] = []

    def record(path: str, kind: str, result: dict[str, Any], memory: PeakMemory, load0) -> None:
        public = {k: v for k, v in result.items() if not k.startswith("_")}
        load = [load0, load_average()[0] if load_average() else None]
        if path == "ours":
            fmt = {"precision": hardware["precision"], "channels_last": hardware["channels_last"]}
        else:
            fmt = {"precision": "32-true", "channels_last": False}
        records.append(
            {
                "model": model,
                "path": path,
                "kind": kind,
                **public,
                **fmt,
                **memory.as_dict(),
                "load": load,
            }
        )
        rate = f"{public['img_s']:8.1f} img/s"
        print(f"  {model:7} {path:9} {kind:5} {rate}  load {load}", flush=True)

    cfg = bench_config(root, workdir / "run", model, args.batch_size, device, args.override)
    hardware = resolve_hardware(cfg)
    print(
        f"  {model}: precision {hardware['precision']} ({hardware['precision_reason']}); "
        f"channels_last {hardware['channels_last']} ({hardware['channels_last_reason']})",
        flush=True,
    )
    limit = args.limit_batches or None
    load0 = wait_for_load(args.max_load, args.max_wait)
    with PeakMemory(device) as memory:
        ours = train_ours(
            cfg, args.warmup_batches, limit, args.epochs, args.data_on_device, args.compile
        )
    record("ours", "train", ours, memory, load0)
    module, datamodule = ours["_module"], ours["_datamodule"]
    if args.infer_batches:
        load0 = wait_for_load(args.max_load, args.max_wait)
        with PeakMemory(device) as memory:
            result = infer_ours(
                module,
                datamodule,
                ours["precision"],
                args.infer_warmup,
                args.infer_batches,
                device,
            )
        record("ours", "infer", result, memory, load0)
    spec = datamodule.preprocess_spec()
    paths, labels = datamodule.split_paths("train"), datamodule.split_labels("train")
    net_config = dict(module.hparams.net_config)
    flops = train_flops_per_image(instantiate(net_config), int(spec["image_size"]))
    for rec in records:
        if rec["kind"] == "train":
            rec.update(flop_rates(flops, rec["img_s"]))
    del ours, module, datamodule
    gc.collect()
    transform = pil_transform(spec["image_size"], spec["mean"], spec["std"])
    dataset = PILImageDataset(paths, labels, transform)
    naive_batches = args.naive_batches if args.naive_batches is not None else args.limit_batches
    for workers in args.naive_workers:
        net = instantiate(net_config)
        instantiate(cfg.init)(net)
        name = f"naive_w{workers}"
        if naive_batches:
            load0 = wait_for_load(args.max_load, args.max_wait)
            loader = naive_loader(dataset, args.batch_size, shuffle=True, workers=workers)
            with PeakMemory(device) as memory:
                result = train_plain(
                    net, loader, device, cfg.optimizer.lr, args.warmup_batches, naive_batches
                )
            result["train_images_per_epoch"] = len(dataset)
            result.update(flop_rates(flops, result["img_s"]))
            record(name, "train", result, memory, load0)
        if args.infer_batches:
            load0 = wait_for_load(args.max_load, args.max_wait)
            loader = naive_loader(dataset, args.eval_batch_size, shuffle=False, workers=workers)
            with PeakMemory(device) as memory:
                result = infer_plain(net, loader, device, args.infer_warmup, args.infer_batches)
            record(name, "infer", result, memory, load0)
    return records


def _median(values: list[float], digits: int = 1) -> float:
    return round(statistics.median(values), digits)


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, path): medians over repeats, and speed-ups vs the best naive path."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for rec in records:
        row = rows.setdefault((rec["model"], rec["path"]), {"model": rec["model"]})
        row["path"] = rec["path"]
        row["precision"] = rec.get("precision")
        row["memory_format"] = "channels_last" if rec.get("channels_last") else "contiguous"
        row.setdefault(f"{rec['kind']}_img_s_all", []).append(rec["img_s"])
        for key in ("peak_rss_mib", "peak_rss_added_mib"):
            row.setdefault(f"{rec['kind']}_{key}_all", []).append(rec.get(key))
        if rec.get("peak_gpu_mib") is not None:
            row.setdefault(f"{rec['kind']}_peak_gpu_mib_all", []).append(rec["peak_gpu_mib"])
        row.setdefault("load_all", []).extend(x for x in rec["load"] if x is not None)
        if rec.get("achieved_gflops") is not None:
            row.setdefault("achieved_gflops_all", []).append(rec["achieved_gflops"])
            row["train_gflop_per_image"] = rec["train_gflop_per_image"]
        if rec["kind"] == "train":
            epochs = rec.get("epoch_s") or []
            measured = epochs[1:] if rec.get("full_epochs") and len(epochs) > 1 else []
            if measured:
                row.setdefault("epoch_s_all", []).append(statistics.median(measured))
            else:
                row.setdefault("epoch_s_est_all", []).append(
                    rec["train_images_per_epoch"] / rec["img_s"]
                )
    out = []
    for row in rows.values():
        for key in list(row):
            if key.endswith("_all"):
                values = [v for v in row[key] if v is not None]
                name = key[: -len("_all")]
                if name == "load":
                    row["load_min_max"] = [min(values), max(values)] if values else None
                elif values:
                    if "epoch" in name:
                        row[name] = _median(values, 3)
                    else:
                        median = "img_s" in name or "gflops" in name
                        row[name] = _median(values) if median else max(values)
                    if "img_s" in name:
                        row[f"{name}_min_max"] = [min(values), max(values)]
                        row["repeats"] = len(values)
        out.append(row)
    for row in out:
        for kind in ("train", "infer"):
            naive = [
                r[f"{kind}_img_s"]
                for r in out
                if r["model"] == row["model"] and r["path"] != "ours" and f"{kind}_img_s" in r
            ]
            if row["path"] == "ours" and naive and f"{kind}_img_s" in row:
                row[f"{kind}_speedup_vs_best_naive"] = round(row[f"{kind}_img_s"] / max(naive), 2)
    return out


def markdown(rows: list[dict[str, Any]], info: dict[str, Any], batch_size: int) -> str:
    """The summary as a Markdown table (medians; min–max over repeats in brackets)."""

    def rate(row: dict, kind: str) -> str:
        if f"{kind}_img_s" not in row:
            return "-"
        lo, hi = row[f"{kind}_img_s_min_max"]
        return f"{row[f'{kind}_img_s']:,.0f} ({lo:,.0f}–{hi:,.0f})"

    def epoch(row: dict) -> str:
        if "epoch_s" in row:
            return f"{row['epoch_s']:.2f}"
        return f"~{row['epoch_s_est']:.1f} (est.)" if "epoch_s_est" in row else "-"

    def speedup(row: dict, kind: str) -> str:
        value = row.get(f"{kind}_speedup_vs_best_naive")
        return f"{value:.1f}x" if value is not None else "-"

    def memory(row: dict) -> str:
        parts = [f"{row['train_peak_rss_mib']:,.0f}"] if row.get("train_peak_rss_mib") else []
        if row.get("train_peak_rss_added_mib") is not None:
            parts[-1:] = [f"{parts[-1]} (+{row['train_peak_rss_added_mib']:,.0f})"]
        if row.get("train_peak_gpu_mib") is not None:
            parts.append(f"GPU {row['train_peak_gpu_mib']:,.0f}")
        return " / ".join(parts) or "-"

    def gflops(row: dict) -> str:
        if row.get("achieved_gflops") is None:
            return "-"
        text = f"{row['achieved_gflops']:.0f}"
        if peak and not info.get("gpu"):
            text += f" ({100 * row['achieved_gflops'] / peak['gflops']:.0f}%)"
        return text

    peak = info.get("peak_fp32")
    device = info.get("gpu") or f"{info['cpu']} ({info['cpu_cores']} cores, {info.get('isa')})"
    lines = [
        f"{device}, batch {batch_size}, torch {info['torch']}, {info['torch_threads']} threads",
    ]
    if peak and not info.get("gpu"):
        lines.append(f"fp32 peak {peak['gflops']:.0f} GFLOP/s = {peak['formula']}")
    lines += [
        "",
        "| model | path | precision, memory format | train img/s | vs naive | train GFLOP/s "
        "(% of peak) | epoch s | infer img/s | vs naive | train peak RSS MiB (+added) "
        "| load avg (1 min) | repeats |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        load = row.get("load_min_max")
        load_text = f"{load[0]:.1f}–{load[1]:.1f}" if load else "-"
        lines.append(
            f"| {row['model']} | {row['path']} "
            f"| {row.get('precision')}, {row.get('memory_format')} "
            f"| {rate(row, 'train')} | {speedup(row, 'train')} | {gflops(row)} "
            f"| {epoch(row)} | {rate(row, 'infer')} | {speedup(row, 'infer')} | {memory(row)} "
            f"| {load_text} | {row.get('repeats', '-')} |"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m xray_lightning.bench.train", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=["cnn", "fast"],
        help="conf/net names, or 'fast': the main job's network and settings (experiment=fast)",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval-batch-size", type=int, default=256, help="inference batches")
    parser.add_argument(
        "--limit-batches", type=int, default=10, help="timed training batches (0: whole epochs)"
    )
    parser.add_argument("--warmup-batches", type=int, default=2)
    parser.add_argument("--naive-batches", type=int, help="timed naive batches (default: same)")
    parser.add_argument("--infer-batches", type=int, default=2, help="timed inference batches")
    parser.add_argument("--infer-warmup", type=int, default=1, help="untimed inference batches")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per fit (our path)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive-workers", type=int, nargs="+", default=[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument(
        "--data-on-device", action="store_true", help="hold the decoded dataset on the GPU"
    )
    parser.add_argument(
        "--compile", metavar="MODE", help="torch.compile the net: default, reduce-overhead, ..."
    )
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument(
        "--max-load", type=float, help="wait until the 1-min load average is at most this"
    )
    parser.add_argument("--max-wait", type=float, default=120.0, help="seconds to wait for it")
    parser.add_argument("--root", type=Path, help="dataset (default: XRAY_DATA_ROOT, ...)")
    parser.add_argument(
        "--synthetic", action="store_true", help="time a synthetic dataset of the real size"
    )
    parser.add_argument(
        "--override", nargs="*", default=[], help="extra Hydra overrides for our path"
    )
    parser.add_argument("--out", type=Path, help="write every measurement and the summary here")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for name in ("batch_size", "eval_batch_size", "repeats", "epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    for name in ("limit_batches", "warmup_batches", "infer_batches", "infer_warmup"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0")
    if args.limit_batches == 0 and args.warmup_batches == 0:
        parser.error("whole epochs (--limit-batches 0) need --warmup-batches >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available here")
    if args.data_on_device and args.device == "cpu":
        parser.error("--data-on-device needs --device cuda (on the CPU the data is there already)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    args.override = [*args.override, f"data.eval_batch_size={args.eval_batch_size}"]
    with tempfile.TemporaryDirectory(prefix="xray-bench-train-") as tmp:
        try:
            root, source = find_root(args.root, args.synthetic, Path(tmp))
            info = machine_info(device)
            print(f"dataset: {root} ({source}); {info}", flush=True)
            records = []
            for repeat in range(args.repeats):
                print(f"repeat {repeat + 1}/{args.repeats}", flush=True)
                for model in args.models:
                    for rec in measure(args, model, root, device, Path(tmp)):
                        rec.update(repeat=repeat, full_epochs=args.limit_batches == 0)
                        records.append(rec)
        except XrayLightningError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    rows = summarize(records)
    info["load_average_end"] = load_average()
    result = {
        "command": " ".join(["python -m xray_lightning.bench.train", *(argv or sys.argv[1:])]),
        "dataset": {"root": str(root), "source": source},
        "machine": info,
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "json", "root")},
        "summary": rows,
        "records": records,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    if args.json:
        print(json.dumps({k: result[k] for k in ("machine", "summary")}, indent=2, default=str))
    else:
        print(markdown(rows, info, args.batch_size))
    return 0


if __name__ == "__main__":
    run_cli(main)
