"""Predict normal / non-covid / covid for image files and folders with a trained cascade.

    python -m xray_lightning.predict [--json] PATH...                  (the shipped model)
    python -m xray_lightning.predict --run RUN_DIR [--json] PATH...
    python -m xray_lightning.predict --stage1 CKPT --stage2 CKPT [--t1 T] [--t2 T] [--json] PATH...

A PATH is an image or a folder (searched recursively; hidden files skipped). Images of any size
or mode are converted the way training data was: ``load_image`` (any size/mode, resized to the
model's side) then ``prepare_batch`` with the cascade's preprocess spec. The cascade runs in
plain PyTorch (``labeller``): Lightning is never imported here. One row per file: path,
label, p_infected, p_covid (only for images called infected: P(covid | infected)), refer, error
(probabilities calibrated on val and the refer flag when the model folder holds a calibration:
``evaluate --calibrate``); as a
tab-separated table, ``--csv`` or ``--json`` (one object per line). A file that cannot be read as
an image gets an error row with the same columns; the others are still predicted.

Exit status: 0 all predicted, 1 some files failed, 2 bad checkpoint, run dir or arguments.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from xray_lightning import progress
from xray_lightning.calibration import Calibration
from xray_lightning.cli import command_parser
from xray_lightning.data.errors import BadImageError
from xray_lightning.data.images import load_image
from xray_lightning.data.transforms import prepare_batch
from xray_lightning.errors import CheckpointError, XrayLightningError
from xray_lightning.exits import run_cli
from xray_lightning.labeller import Labeller
from xray_lightning.onnx_stage import RUNTIMES
from xray_lightning.runs import CascadeSource, cascade_source

EXIT_OK, EXIT_FAILED_FILES, EXIT_USAGE = 0, 1, 2
COLUMNS = ("path", "label", "p_infected", "p_covid", "refer", "error")
# Images per forward pass. On the 2-core AVX2 CPU, labelling the 615 test images: 64 against 128
# took 0.90x the wall time (median of 5 whole-process pairs) and ~80 MiB less peak memory; a
# batch that fits the CPU's caches beats a larger one.
BATCH_SIZE = 64


@dataclass
class Row:
    """One output row: a prediction, or an error naming the file."""

    path: str
    label: str | None
    p_infected: float | None
    p_covid: float | None
    error: str | None = None
    refer: bool | None = None

    def cells(self, missing: str = "-") -> list[str]:
        """The row's COLUMNS as text: probabilities to 4 places, ``missing`` for what it lacks
        (p_covid of an image called normal; everything but the path and error of an error row)."""

        def number(value: float | None) -> str:
            return missing if value is None else f"{value:.4f}"

        label = "error" if self.error is not None else str(self.label)
        error = missing if self.error is None else self.error
        refer = missing if self.refer is None else "yes" if self.refer else "no"
        return [self.path, label, number(self.p_infected), number(self.p_covid), refer, error]

    def text(self) -> str:
        return "\t".join(self.cells())


def load_cascade(args: argparse.Namespace) -> tuple[Labeller, CascadeSource]:
    """The cascade named by ``--model``, ``--run`` or ``--stage1``/``--stage2``, else the shipped
    one (thresholds: --t1/--t2 win), and where it came from."""
    source = cascade_source(args.run, args.stage1, args.stage2, args.t1, args.t2, args.model)
    labeller = Labeller.from_checkpoints(
        source.stage1_checkpoints,
        source.stage2_checkpoints,
        **source.thresholds,
        fold_bn=not getattr(args, "adapt", False),  # adapting re-estimates BatchNorm first
        runtime=getattr(args, "runtime", "torch"),
    )
    return labeller, source


def adapt_to_files(
    labeller: Labeller, files: Sequence[Path | tuple[Path, str]]
) -> dict[Path, torch.Tensor]:
    """``--adapt``: re-estimate the (unfolded) cascade's BatchNorm statistics on the decodable
    images among ``files`` (``adapt.adapt_cascade``); returns those decoded images by path, for
    ``predict_files`` to label without decoding them again. Fewer than ``adapt.MIN_IMAGES`` is an
    ``AdaptError``."""
    from xray_lightning import adapt

    side = int(labeller.preprocess["image_size"])
    decoded = {}
    for path in files:
        if isinstance(path, tuple):
            continue
        try:
            decoded[path] = load_image(path, side, expect_size=None, expect_mode=None)
        except BadImageError:
            continue  # reported as an error row when labelled
    adapt.check_enough(len(decoded), what="readable images")
    inputs = prepare_batch(torch.stack(list(decoded.values())), labeller.preprocess)
    adapt.adapt_cascade(labeller, inputs)
    return decoded


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path | tuple[Path, str]]:
    """Each path given, and every non-hidden file under each folder given (sorted), or
    ``(path, reason)`` for what cannot be walked: a symlink loop, an unreadable folder, a path
    past the length limit. Symlinked folders are followed once (a loop is reported, not walked)."""
    for path in map(Path, paths):
        if path.is_dir():
            yield from _walk(path, {_identity(path)})
        else:
            yield path


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _walk(folder: Path, ancestors: set) -> Iterator[Path | tuple[Path, str]]:
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as error:
        yield folder, f"cannot read the folder ({error.strerror or error})"
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        child = Path(entry.path)
        try:
            is_dir = entry.is_dir()  # follows symlinks
        except OSError as error:
            yield child, f"cannot read ({error.strerror or error})"
            continue
        if not is_dir:
            yield child
            continue
        identity = _identity(child)
        if identity in ancestors:
            yield child, "symlink loop (a folder inside itself): not walked"
            continue
        yield from _walk(child, ancestors | {identity})


def _batches(items: Sequence[Path], size: int) -> Iterator[Sequence[Path]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@torch.inference_mode()
def predict_files(
    cascade: Labeller,
    files: Sequence[str | Path | tuple[Path, str]],
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[..., None] | None = None,
    calibration: Calibration | None = None,
    decoded: Mapping[Path, torch.Tensor] | None = None,
) -> Iterator[Row]:
    """Rows in the order of ``files``: decoded as in training (or taken from ``decoded``, images
    already decoded the same way), batched through the cascade.
    ``on_batch(paths, raw, inputs, p_infected, p_covid, labels, shown, refer)`` sees each batch
    of good images (``cards.CardWriter``). With ``calibration`` the probabilities are the
    calibrated ones and ``refer`` is set (decisions are the same either way: calibration is
    monotonic)."""
    calibration = calibration or Calibration()
    spec = cascade.preprocess
    if not spec:
        raise CheckpointError("the stage checkpoints carry no preprocess spec (hparams.preprocess)")
    side = int(spec["image_size"])
    names = cascade.class_names
    items = [f if isinstance(f, tuple) else Path(f) for f in files]
    for chunk in _batches(items, batch_size):
        rows: list[Row | None] = []
        images: list[torch.Tensor] = []
        good_paths: list[Path] = []
        for path in chunk:
            if isinstance(path, tuple):  # iter_files could not walk it
                rows.append(Row(str(path[0]), None, None, None, path[1]))
                continue
            try:
                image = (decoded or {}).get(path)
                if image is None:
                    image = load_image(path, side, expect_size=None, expect_mode=None)
                images.append(image)
                good_paths.append(path)
                rows.append(None)
            except BadImageError as error:
                rows.append(Row(str(path), None, None, None, error.reason))
        if images:
            raw = torch.stack(images)
            inputs = prepare_batch(raw, spec)
            # stage 2 only where stage 1 says infected; spread: an ensemble's disagreement
            p_inf, p_cov, spread = cascade.label_proba(inputs)
            labels = cascade.decide(p_inf, p_cov)
            shown_inf, shown_cov, refer = calibration.shown(
                p_inf, p_cov, cascade.t1, cascade.t2, spread
            )
            if on_batch is not None:
                on_batch(
                    good_paths, raw, inputs, p_inf, p_cov, labels, (shown_inf, shown_cov), refer
                )
            columns = (labels.tolist(), shown_inf.tolist(), shown_cov.tolist(), refer.tolist())
            good = iter(zip(*columns, strict=True))
        for path, row in zip(chunk, rows, strict=True):
            if row is None:
                label, a, b, referred = next(good)
                covid = None if math.isnan(b) else round(b, 6)  # only for images called infected
                row = Row(str(path), names[label], round(a, 6), covid, refer=bool(referred))
            yield row


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "xray_lightning.predict",
        "Classify chest X-ray images as normal / non-covid / covid with a cascade "
        "(default: the shipped one; --model, --run, --stage1/--stage2 or $XRAY_MODEL choose "
        "another).",
        [
            "{prog} scan.png more_scans/",
            "{prog} --csv scans/ > labels.csv",
            "{prog} --run logs/cascade/runs/2026-12-01_10-00-00 scan.png",
        ],
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--model", type=Path, help="a model folder: stage1.ckpt, stage2.ckpt, thresholds.json"
    )
    source.add_argument("--run", type=Path, help="a cascade run dir (its metrics.json is read)")
    source.add_argument(
        "--stage1",
        type=Path,
        action="append",
        help="stage-1 (normal vs infected) checkpoint; repeat it for an ensemble (averaged)",
    )
    parser.add_argument(
        "--stage2",
        type=Path,
        action="append",
        help="stage-2 (covid vs non-covid) checkpoint; repeat it for an ensemble (averaged)",
    )
    parser.add_argument("--t1", type=float, help="infected if p_infected >= t1")
    parser.add_argument("--t2", type=float, help="covid if p_covid >= t2")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="one JSON object per line")
    output.add_argument("--csv", action="store_true", help="comma-separated, with a header row")
    parser.add_argument(
        "--cards", type=Path, metavar="DIR", help="one PNG report card per image, into DIR"
    )
    parser.add_argument(
        "--heatmaps", type=Path, metavar="DIR", help="one Grad-CAM overlay PNG per image, into DIR"
    )
    parser.add_argument(
        "--adapt",
        action="store_true",
        help="declared site adaptation: re-estimate BatchNorm statistics on the images given "
        "(at least 64, all from one site, a mixed sample as it comes: never a folder sorted by "
        "class, which makes labels much worse) before labelling them; transductive, opt-in",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=BATCH_SIZE,
        help=f"images per forward pass (default {BATCH_SIZE}: fastest and smallest here)",
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="auto",
        help="what runs the networks: onnx (ONNX Runtime, ~1.5x faster on a CPU; each model is "
        "exported once into the cache), torch, or auto (default: onnx where installed; torch "
        "with --adapt)",
    )
    parser.add_argument("paths", nargs="+", type=Path, help="image files or folders")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.stage1 is not None and args.stage2 is None:
        parser.error("--stage1 needs --stage2 (or pass --run RUN_DIR)")
    if args.run is not None and args.stage2 is not None:
        parser.error("--stage2 goes with --stage1, not with --run")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be a positive integer, got {args.batch_size}")
    if args.adapt and args.runtime == "onnx":
        parser.error("--adapt re-estimates BatchNorm in PyTorch: use --runtime torch or auto")
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        parser.error(f"no such file or folder: {', '.join(missing)}")
    files = list(iter_files(args.paths))
    if not files:
        parser.error(f"no files found under {', '.join(map(str, args.paths))}")
    try:
        cascade, source = load_cascade(args)
        decoded = adapt_to_files(cascade, files) if args.adapt else None
        if decoded is not None:
            print(
                f"adapted: BatchNorm re-estimated on these {len(decoded)} images (transductive; "
                "the labels below are not the inductive model's; they assume the images are a "
                "mixed sample from one site, not a folder sorted by class)",
                file=sys.stderr,
            )
    except (XrayLightningError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    on_batch = None
    if args.cards is not None or args.heatmaps is not None:
        from xray_lightning.cards import CardWriter, model_id

        model = model_id(source.stage1_checkpoints, source.stage2_checkpoints)
        on_batch = CardWriter(cascade, model, args.cards, args.heatmaps)
    failed = 0
    table = csv.writer(sys.stdout, lineterminator="\n") if args.csv else None
    if table is not None:
        table.writerow(COLUMNS)
    elif not args.json:
        print("\t".join(COLUMNS))
    calibration = Calibration.from_saved(source.calibration)
    rows = predict_files(cascade, files, args.batch_size, on_batch, calibration, decoded)
    show = progress.watched(rows_on_stdout=True)
    with progress.image_bar(len(files), "labelling", show) as bar:
        for row in rows:
            failed += row.error is not None
            if table is not None:
                table.writerow(row.cells(missing=""))
            else:
                print(json.dumps(asdict(row)) if args.json else row.text(), flush=False)
            bar.update(1)
    if failed:
        print(f"{failed} of {len(files)} file(s) could not be predicted", file=sys.stderr)
    return EXIT_FAILED_FILES if failed else EXIT_OK


def entry_point() -> None:
    """The installed ``xray-predict`` command."""
    run_cli(main)


if __name__ == "__main__":
    entry_point()
