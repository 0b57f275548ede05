"""Audit a dataset folder: counts, imbalance, byte-identical duplicates, bad files, a figure.

    python -m xray_lightning.data.audit ROOT [--out DIR] [--json] [--layout auto|xray|kaggle]
        [--expect-size N|none] [--expect-mode L|none]

Exit status: 0 clean, 1 bad files found (each named), 2 layout error (or no dataset).
Nothing under ROOT is ever written.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xray_lightning.cli import command_parser
from xray_lightning.exits import run_cli

from .cache import _pmap, default_workers
from .errors import BadImageError, LayoutError
from .images import decode_image
from .layout import CLASSES3, OFFICIAL_SPLITS, index_dataset

EXIT_CLEAN, EXIT_BAD_FILES, EXIT_LAYOUT = 0, 1, 2
FIGURE_NAME = "class_distribution.png"
# decode expectations per layout when not given: the course's files are 150x150 grayscale
LAYOUT_EXPECT: dict[str, tuple[int | None, str | None]] = {
    "xray": (150, "L"),
    "kaggle": (None, None),
}


def _check_file(
    path: Path, expect_size: int | None, expect_mode: str | None
) -> tuple[str | None, str | None]:
    """(content digest or None, bad reason or None) for one file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"cannot read the file ({exc.strerror or exc})"
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    try:
        decode_image(data, path, expect_size or 8, expect_size, expect_mode)
    except BadImageError as exc:
        return digest, exc.reason
    return digest, None


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 3) if b else None


def audit_dataset(
    root: Path | str,
    layout: str = "auto",
    expect_size: int | None | str = "auto",
    expect_mode: str | None = "auto",
) -> dict[str, Any]:
    """Audit ``root`` and return a JSON-able report (raises LayoutError on a layout problem)."""
    index = index_dataset(root, layout)
    default_size, default_mode = LAYOUT_EXPECT[index.layout]
    size = default_size if expect_size == "auto" else expect_size
    mode = default_mode if expect_mode == "auto" else expect_mode
    results = _pmap(
        lambda rel: _check_file(index.root / rel, size, mode),  # type: ignore[arg-type]
        index.relpaths,
        default_workers(),
    )
    counts = {s: dict.fromkeys(CLASSES3, 0) for s in OFFICIAL_SPLITS}
    for split, label in zip(index.splits, index.labels, strict=True):
        if label is not None:
            counts[split][CLASSES3[label]] += 1
    bad: dict[str, list[str]] = defaultdict(list)
    for path, reason in index.problems:
        bad[path.relative_to(index.root).as_posix()].append(reason)
    groups: dict[str, list[str]] = defaultdict(list)
    for rel, (digest, reason) in zip(index.relpaths, results, strict=True):
        if reason is not None:
            bad[rel].append(reason)
        if digest is not None:
            groups[digest].append(rel)
    dup_groups = [sorted(g) for g in groups.values() if len(g) > 1]
    within = sorted(g for g in dup_groups if len({r.split("/")[0] for r in g}) == 1)
    across = sorted(g for g in dup_groups if len({r.split("/")[0] for r in g}) > 1)
    imbalance = {
        s: {
            "infected:normal": _ratio(c["non-covid"] + c["covid"], c["normal"]),
            "non-covid:covid": _ratio(c["non-covid"], c["covid"]),
            "max:min": _ratio(max(c.values()), min(c.values())),
        }
        for s, c in counts.items()
    }
    return {
        "root": str(index.root),
        "layout": index.layout,
        "expect_size": size,
        "expect_mode": mode,
        "n_files": len(index),
        "counts": counts,
        "imbalance": imbalance,
        "duplicates": {"within_splits": within, "across_splits": across},
        "bad_files": [{"path": p, "reason": "; ".join(r)} for p, r in sorted(bad.items())],
    }


def format_report(report: Mapping[str, Any]) -> str:
    """Human-readable summary of ``audit_dataset``'s report."""
    lines = [f"Dataset {report['root']} ({report['layout']} layout, {report['n_files']} files)"]
    header = f"{'split':<8}" + "".join(f"{c:>11}" for c in CLASSES3) + f"{'total':>8}"
    lines += ["", header]
    for split, per in report["counts"].items():
        row = "".join(f"{per[c]:>11}" for c in CLASSES3)
        lines.append(f"{split:<8}{row}{sum(per.values()):>8}")
    lines += ["", "Imbalance ratios:"]
    for split, ratios in report["imbalance"].items():
        lines.append(f"  {split:<6} " + "  ".join(f"{k} {v}" for k, v in ratios.items()))
    dups = report["duplicates"]
    for kind, groups in (
        ("within splits", dups["within_splits"]),
        ("across", dups["across_splits"]),
    ):
        n_pairs = sum(len(g) * (len(g) - 1) // 2 for g in groups)
        lines.append(
            f"\nByte-identical duplicates {kind}: {len(groups)} group(s), {n_pairs} pair(s)"
        )
        lines += [f"  {' = '.join(g)}" for g in groups]
    bad = report["bad_files"]
    lines.append(f"\nBad files: {len(bad)}")
    lines += [f"  {b['path']}: {b['reason']}" for b in bad]
    return "\n".join(lines)


def _size_arg(text: str) -> int | str | None:
    if text == "auto":
        return text
    return None if text.lower() in ("none", "null", "any") else int(text)


def main(argv: list[str] | None = None) -> int:
    parser = command_parser(
        "xray_lightning.data.audit",
        __doc__.splitlines()[0],
        [
            "{prog}                       (the dataset the package finds)",
            "{prog} /path/to/dataset --json",
        ],
    )
    parser.add_argument(
        "root",
        type=Path,
        nargs="?",
        help="dataset folder, read only (default: the one the package finds)",
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/audit"), help="figure folder")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--layout", choices=("auto", "xray", "kaggle"), default="auto")
    parser.add_argument("--expect-size", type=_size_arg, default="auto", help="N, none or auto")
    parser.add_argument("--expect-mode", choices=("L", "none", "auto"), default="auto")
    args = parser.parse_args(argv)
    if args.root is None:
        from xray_lightning.data.layout import default_root

        args.root = default_root()
    mode = None if args.expect_mode == "none" else args.expect_mode
    try:
        report = audit_dataset(args.root, args.layout, args.expect_size, mode)
    except LayoutError as exc:
        print(f"Layout error: {exc}", file=sys.stderr)
        return EXIT_LAYOUT
    from xray_lightning.plots.distribution import class_distribution_figure
    from xray_lightning.plots.io import save_figure

    figure = save_figure(
        class_distribution_figure(report["counts"]), args.out / FIGURE_NAME, dpi=120
    )
    report["figure"] = str(figure)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
        print(f"\nFigure: {figure}")
    if report["bad_files"]:
        print(f"{len(report['bad_files'])} bad file(s) found (listed above)", file=sys.stderr)
        return EXIT_BAD_FILES
    return EXIT_CLEAN


def entry_point() -> None:
    """The installed ``xray-audit`` command."""
    run_cli(main)


if __name__ == "__main__":
    entry_point()
