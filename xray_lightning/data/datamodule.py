"""XrayDataModule: one DataModule for every stage of the chest X-ray models."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from xray_lightning.settings import validate

from .cache import decode_dataset
from .errors import BadFilesError, BadFileWarning, LayoutError, format_problems
from .images import pixel_digest
from .layout import default_root, index_dataset
from .sampling import BatchTensorDataset, EpochBatchSampler, as_is
from .settings import DATA, DataSettings
from .stages import SPLITS, STAGES, stage_labels, stratified_holdout
from .transforms import augment, image_stats, normalize, preprocess_u8, to_float

log = logging.getLogger(__name__)
OFFICIAL_TO_SPLIT = {"test": "test", "val": "showcase"}


@dataclass
class _Loaded:
    """Everything setup() computes, shared by all splits (rows index into ``images``)."""

    root: Path
    layout: str
    relpaths: tuple[str, ...]
    images: torch.Tensor  # uint8 [N, 1, H, W], preprocessed
    rows: dict[str, torch.Tensor]  # split -> rows of images used by this stage
    labels: dict[str, torch.Tensor]  # split -> stage labels (int64)
    mean: float
    std: float
    skipped: list[tuple[Path, str]]
    info: dict[str, Any]


class XrayDataModule(pl.LightningDataModule):
    """Chest X-ray images for one stage, decoded once into memory.

    Loaders yield raw uint8 batches; ``on_after_batch_transfer`` (or ``transform_batch``) turns
    them into ``(float32 [B,1,H,W] normalised, int64 [B])`` with augmentation when training.
    """

    def __init__(
        self,
        root: str | Path | None = DATA.root,
        stage: str = DATA.stage,
        layout: str = DATA.layout,
        image_size: int = DATA.image_size,
        expect_size: int | None = DATA.expect_size,
        expect_mode: str | None = DATA.expect_mode,
        val_fraction: float = DATA.val_fraction,
        split_seed: int = DATA.split_seed,
        seed: int = DATA.seed,
        batch_size: int = DATA.batch_size,
        eval_batch_size: int = DATA.eval_batch_size,
        eval_test_each_epoch: bool = DATA.eval_test_each_epoch,
        imbalance: str = DATA.imbalance,
        on_bad_file: str = DATA.on_bad_file,
        cache_dir: str | Path | None = DATA.cache_dir,
        preprocessing: Mapping[str, Any] | None = None,
        augmentation: Mapping[str, Any] | None = None,
        num_workers: int = DATA.num_workers,
        mean: float | None = DATA.mean,
        std: float | None = DATA.std,
    ) -> None:
        """Arguments and defaults: ``data.settings.DataSettings`` (validated here, once).

        ``mean``/``std``: normalise with these (a trained model's train-split statistics, as
        ``runs.data_settings`` passes them) instead of the ones computed from the train split.
        """
        super().__init__()
        given = dict(locals())
        given.pop("self")
        given.pop("__class__", None)
        settings = validate(DataSettings, given, "data")
        if settings["root"] is None:
            settings["root"] = default_root()
        self.root = Path(settings.pop("root"))
        cache_dir = settings.pop("cache_dir")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        # the validated settings as attributes: self.stage, self.image_size, self.batch_size, ...
        for key, value in settings.items():
            setattr(self, key, value)
        self._data: _Loaded | None = None

    # ----------------------------------------------------------------- setup
    @property
    def class_names(self) -> tuple[str, ...]:
        return STAGES[self.stage]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def prepare_data(self) -> None:
        """Index and decode (fills the on-disk cache when cache_dir is set)."""
        self._load()

    def setup(self, stage: str | None = None) -> None:
        """Idempotent: the first call loads everything, later calls return at once."""
        self._load()

    @property
    def data(self) -> _Loaded:
        return self._load()

    def _load(self) -> _Loaded:
        if self._data is None:
            self._data = self._build()
        return self._data

    def _build(self) -> _Loaded:
        start = time.perf_counter()
        index = index_dataset(self.root, self.layout)
        decoded = decode_dataset(
            index.root,
            index.relpaths,
            self.image_size,
            self.expect_size,
            self.expect_mode,
            self.cache_dir,
        )
        problems = self._bad_files(index, decoded.bad)
        bad_rows = {index.relpaths.index(p.relative_to(index.root).as_posix()) for p, _ in problems}
        if problems:
            if self.on_bad_file == "error":
                raise BadFilesError(
                    f"{len(problems)} bad file(s) in the dataset at {index.root} "
                    f"(expected images of size {self.expect_size or 'any'}, mode "
                    f"{self.expect_mode or 'any'}):\n{format_problems(problems)}\n"
                    "Fix or remove them, or set data.on_bad_file=skip to load the rest.",
                    problems,
                )
            warnings.warn(
                f"Skipped {len(problems)} bad file(s) in {index.root} (data.on_bad_file=skip):\n"
                f"{format_problems(problems)}",
                BadFileWarning,
                stacklevel=3,
            )
        labels3 = torch.tensor([-1 if lab is None else lab for lab in index.labels])
        official = index.splits
        train_rows = [i for i, s in enumerate(official) if s == "train"]
        # hold-out from the index (before skipping): a skipped file never moves the split
        # pixel-identical images (the dataset has byte-identical files) stay on one side
        duplicates = [pixel_digest(decoded.images[row]) for row in train_rows]
        held = stratified_holdout(
            labels3[train_rows].tolist(), self.val_fraction, self.split_seed, duplicates
        )
        split_of = list(official)
        for row, is_held in zip(train_rows, held.tolist(), strict=True):
            split_of[row] = "val" if is_held else "train"
        for row, name in enumerate(official):
            if name in OFFICIAL_TO_SPLIT:
                split_of[row] = OFFICIAL_TO_SPLIT[name]
        all_rows = {
            s: torch.tensor([i for i, n in enumerate(split_of) if n == s and i not in bad_rows])
            for s in SPLITS
        }
        for s in ("train", "test"):
            if len(all_rows[s]) == 0:
                raise LayoutError(f"No usable images left in the {s} split of {index.root}")
        images = preprocess_u8(decoded.images[:, None], self.preprocessing, self.image_size)
        given = self.mean is not None and self.std is not None
        mean, std = (self.mean, self.std) if given else image_stats(images, all_rows["train"])
        rows: dict[str, torch.Tensor] = {}
        labels: dict[str, torch.Tensor] = {}
        for s, r in all_rows.items():
            r = r.long()
            keep, lab = stage_labels(labels3[r], self.stage)
            rows[s], labels[s] = r[keep], lab
        info = {
            "setup_s": time.perf_counter() - start,
            "cache_hit": decoded.cache_hit,
            "cache_file": str(decoded.cache_file) if decoded.cache_file else None,
            "n_files": len(index),
        }
        log.info("Data set up in %.2fs (cache hit: %s)", info["setup_s"], decoded.cache_hit)
        return _Loaded(
            index.root,
            index.layout,
            index.relpaths,
            images,
            rows,
            labels,
            mean,
            std,
            problems,
            info,
        )

    @staticmethod
    def _bad_files(index: Any, bad: dict[int, str]) -> list[tuple[Path, str]]:
        merged: dict[Path, list[str]] = {}
        for path, reason in index.problems:
            merged.setdefault(path, []).append(reason)
        for row, reason in bad.items():
            merged.setdefault(index.root / index.relpaths[row], []).append(reason)
        return sorted(((p, "; ".join(r)) for p, r in merged.items()), key=lambda x: str(x[0]))

    # ----------------------------------------------------------------- facts
    def _check_split(self, split: str) -> str:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
        return split

    def summary(self) -> dict[str, dict[str, int]]:
        """``{split: {class_name: count}}`` for this stage."""
        out = {}
        for s in SPLITS:
            counts = torch.bincount(self.data.labels[s], minlength=self.num_classes).tolist()
            out[s] = dict(zip(self.class_names, counts, strict=True))
        return out

    def split_paths(self, split: str) -> list[Path]:
        """Files of a split, in the order of ``split_dataloader(split)``."""
        d = self.data
        return [d.root / d.relpaths[i] for i in d.rows[self._check_split(split)].tolist()]

    def split_labels(self, split: str) -> torch.Tensor:
        """Stage labels (int64) of a split, in the order of ``split_dataloader(split)``."""
        return self.data.labels[self._check_split(split)].clone()

    def _train_counts(self) -> torch.Tensor:
        return torch.bincount(self.data.labels["train"], minlength=self.num_classes)

    def pos_weight(self) -> float:
        """n_negative / n_positive on the train split (binary stages only)."""
        if self.num_classes != 2:
            raise ValueError(f"pos_weight is for binary stages; stage {self.stage} has 3 classes")
        neg, pos = self._train_counts().tolist()
        if pos == 0:
            raise LayoutError(f"No positive ({self.class_names[1]}) images in the train split")
        return neg / pos

    def class_weights(self) -> torch.Tensor:
        """Inverse-frequency class weights on the train split, scaled to mean 1 (float32)."""
        counts = self._train_counts().double()
        if (counts == 0).any():
            missing = [n for n, c in zip(self.class_names, counts, strict=True) if c == 0]
            raise LayoutError(f"No train images of class(es) {missing}")
        w = 1.0 / counts
        return (w / w.mean()).float()

    def preprocess_spec(self) -> dict[str, Any]:
        """JSON-able recipe to turn a raw image file into this model's input (see prepare_batch)."""
        d = self.data
        return {
            "image_size": self.image_size,
            "expect_size": self.expect_size,
            "expect_mode": self.expect_mode,
            "layout": d.layout,
            "stage": self.stage,
            "class_names": list(self.class_names),
            "preprocessing": dict(self.preprocessing),
            "mean": d.mean,
            "std": d.std,
        }

    # ----------------------------------------------------------------- loaders
    def _loader(self, split: str, train: bool) -> DataLoader:
        d = self.data
        rows, labels = d.rows[split], d.labels[split]
        weights = None
        if train and self.imbalance == "sampler":
            per_class = 1.0 / self._train_counts().double().clamp(min=1)
            weights = per_class[labels]
        sampler = EpochBatchSampler(
            len(rows),
            self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            seed=self.seed,
            weights=weights,
            augment=train and self.augmentation["enabled"],
        )
        dataset = BatchTensorDataset(d.images, labels, rows)
        return DataLoader(
            dataset,
            batch_size=None,
            sampler=sampler,
            collate_fn=as_is,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        val = self._loader("val", train=False)
        return [val, self._loader("test", train=False)] if self.eval_test_each_epoch else val

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def split_dataloader(self, split: str) -> DataLoader:
        """Any split in file order: no shuffling, no augmentation."""
        return self._loader(self._check_split(split), train=False)

    # ----------------------------------------------------------------- batches
    def transform_batch(
        self, batch: tuple[torch.Tensor, ...], train: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw loader batch -> (float32 [B,1,H,W] normalised, int64 [B]); augments if train."""
        images, labels, aug_seed = batch
        seed = int(aug_seed)
        mean, std = (
            (self.data.mean, self.data.std) if self.preprocessing["normalize"] else (None, None)
        )
        if train and self.augmentation["enabled"] and seed >= 0:
            # uint8 in: 1/255, brightness/contrast and normalisation fold into one a x + b
            generator = torch.Generator().manual_seed(seed)
            return augment(images, self.augmentation, generator, mean, std), labels.long()
        return normalize(to_float(images), mean, std), labels.long()

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        training = self.trainer is not None and bool(self.trainer.training)
        return self.transform_batch(batch, train=training)

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints: the preprocessing recipe (for predict), once set up."""
        return {"preprocess_spec": self.preprocess_spec()} if self._data is not None else {}
