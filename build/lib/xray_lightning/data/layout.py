"""Find the image files of a dataset folder (two layouts) and label them.

Labels here are always the three classes (0 normal, 1 non-covid, 2 covid); stages map them later.
Official split folders are ``train``, ``test`` and ``val``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetNotFoundError, LayoutError

CLASSES3: tuple[str, ...] = ("normal", "non-covid", "covid")
OFFICIAL_SPLITS: tuple[str, ...] = ("train", "test", "val")
IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png"})
LAYOUTS: tuple[str, ...] = ("xray", "kaggle")

# layout -> {class folder relative to the split folder: 3-class label or None (decided by name)}
CLASS_FOLDERS: dict[str, dict[str, int | None]] = {
    "xray": {"normal": 0, "infected/non-covid": 1, "infected/covid": 2},
    "kaggle": {"NORMAL": 0, "PNEUMONIA": None},
}

EXPECTED_LAYOUT = (
    "ROOT/{train,test,val}/{normal,infected/non-covid,infected/covid}/*.jpg "
    "(or the Kaggle chest_xray layout ROOT/{train,test,val}/{NORMAL,PNEUMONIA}/*.jpeg, "
    "'bacteria'/'virus' in pneumonia file names)"
)
HOW_TO_POINT = (
    "Point at a dataset with: export XRAY_DATA_ROOT=/path/to/dataset, or the Hydra override "
    "data.root=/path/to/dataset, or `make data DATASET=/path/to/dataset` (links data/dataset)."
)


REPO = Path(__file__).resolve().parents[2]


def dataset_candidates(explicit: str | Path | None = None) -> list[tuple[Path, str]]:
    """Where the dataset is looked for, in order: the given path, $XRAY_DATA_ROOT, the repo's
    ``data/dataset`` link (``make data``), then ``../shared/dataset`` next to the repo."""
    env = os.environ.get("XRAY_DATA_ROOT")
    candidates = [(Path(explicit), "given")] if explicit else []
    candidates += [(Path(env), "XRAY_DATA_ROOT")] if env else []
    candidates += [(REPO / "data" / "dataset", "data/dataset")]
    candidates += [(REPO.parent / "shared" / "dataset", "../shared/dataset")]
    return candidates


def find_dataset(explicit: str | Path | None = None) -> tuple[Path | None, str]:
    """The one dataset finder: (root, where it came from) of the first candidate holding a
    ``train/`` folder; a given path or $XRAY_DATA_ROOT is never passed over (it is returned
    even when missing, so the error names it); (None, tried) when nothing is found."""
    candidates = dataset_candidates(explicit)
    for path, source in candidates:
        if source in ("given", "XRAY_DATA_ROOT") or (path / "train").is_dir():
            return path, source
    return None, " and ".join(str(path) for path, _ in candidates)


def default_root() -> Path:
    """The dataset root used when none is configured (``data.root: null``)."""
    root, _ = find_dataset()
    return root if root is not None else REPO / "data" / "dataset"


@dataclass(frozen=True)
class DatasetIndex:
    """Every image file of a dataset: parallel lists, sorted by split, class, natural file order.

    ``labels`` is None for a file whose class cannot be told (listed in ``problems`` too).
    """

    root: Path
    layout: str
    relpaths: tuple[str, ...]
    splits: tuple[str, ...]
    labels: tuple[int | None, ...]
    problems: tuple[tuple[Path, str], ...]  # per-file problems found by looking at names only

    def __len__(self) -> int:
        return len(self.relpaths)


def natural_key(name: str) -> list[object]:
    """Sort key so that 2.jpg comes before 10.jpg."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def detect_layout(root: Path) -> str:
    """Return ``"xray"`` or ``"kaggle"`` from the class folders under ``root/train``."""
    train = root / "train"
    if (train / "normal").is_dir() or (train / "infected").is_dir():
        return "xray"
    if (train / "NORMAL").is_dir() or (train / "PNEUMONIA").is_dir():
        return "kaggle"
    found = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    raise LayoutError(
        f"Cannot tell the layout of the dataset at {root}: found {found or 'nothing'} there, "
        f"expected {EXPECTED_LAYOUT}. Set data.layout=xray|kaggle or fix the folders."
    )


def check_root(root: Path | str) -> Path:
    """Resolve ``root`` and raise DatasetNotFoundError (what was tried, what to do) if absent."""
    given = Path(os.path.expanduser(str(root)))
    path = given.resolve()
    if not path.is_dir() or not any(path.iterdir()):
        state = "is empty" if path.is_dir() else "does not exist"
        raise DatasetNotFoundError(
            f"No dataset found: {path} (data.root={given}) {state}. "
            f"Expected layout: {EXPECTED_LAYOUT}. {HOW_TO_POINT}"
        )
    return path


def kaggle_label(name: str) -> int | None:
    """Kaggle pneumonia files: 'bacteria' -> non-covid (1), 'virus' -> covid (2)."""
    low = name.lower()
    if "bacteria" in low and "virus" not in low:
        return 1
    if "virus" in low and "bacteria" not in low:
        return 2
    return None


def _image_files(folder: Path) -> list[Path]:
    files = [
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    ]
    return sorted(files, key=lambda p: natural_key(p.name))


def index_dataset(root: Path | str, layout: str = "auto") -> DatasetIndex:
    """List and label every image file under ``root``.

    Raises DatasetNotFoundError when ``root`` is absent, LayoutError for an unknown layout, a
    missing split or class folder, an empty split, or a train class folder without images.
    """
    path = check_root(root)
    if layout == "auto":
        layout = detect_layout(path)
    if layout not in LAYOUTS:
        raise ValueError(f"data.layout must be one of auto, {', '.join(LAYOUTS)}; got {layout!r}")
    folders = CLASS_FOLDERS[layout]
    relpaths: list[str] = []
    splits: list[str] = []
    labels: list[int | None] = []
    problems: list[tuple[Path, str]] = []
    layout_problems: list[tuple[Path, str]] = []
    for split in OFFICIAL_SPLITS:
        if not (path / split).is_dir():
            layout_problems.append((path / split, "missing split folder"))
            continue
        n_split = 0
        for folder_name, label in folders.items():
            folder = path / split / folder_name
            if not folder.is_dir():
                layout_problems.append((folder, f"missing class folder ({layout} layout)"))
                continue
            files = _image_files(folder)
            if not files and split == "train":
                layout_problems.append((folder, "no images: train needs every class"))
            n_split += len(files)
            for f in files:
                file_label = label if label is not None else kaggle_label(f.name)
                if file_label is None:
                    problems.append((f, "pneumonia file name has neither 'bacteria' nor 'virus'"))
                relpaths.append(f.relative_to(path).as_posix())
                splits.append(split)
                labels.append(file_label)
        if n_split == 0:
            layout_problems.append((path / split, "empty split: no image files"))
    if layout_problems:
        lines = "\n".join(f"  {p}: {why}" for p, why in layout_problems)
        raise LayoutError(
            f"The dataset at {path} does not have the expected {layout} layout:\n{lines}\n"
            f"Expected: {EXPECTED_LAYOUT}.",
            layout_problems,
        )
    return DatasetIndex(
        path, layout, tuple(relpaths), tuple(splits), tuple(labels), tuple(problems)
    )
