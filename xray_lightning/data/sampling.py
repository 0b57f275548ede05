"""In-memory dataset indexed by whole batches, and a batch sampler seeded by (seed, epoch).

The loader yields ``(images_u8 [B,1,H,W], labels int64 [B], aug_seed int64 [])`` with no per-item
collation. Shuffling, weighted sampling and augmentation seeds depend only on
(seed, epoch, batch number): resuming at epoch k replays exactly what an unbroken run would see.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

NO_AUGMENTATION = -1


def derive_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (numpy SeedSequence: well spread, platform-stable)."""
    state = np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2)
    return int((int(state[0]) << 31) ^ int(state[1])) & 0x7FFFFFFFFFFFFFFF


class BatchTensorDataset(Dataset):
    """``dataset[(aug_seed, indices)]`` -> (images[rows[indices]], labels[indices], aug_seed).

    ``rows`` maps item i to its row of ``images`` (default: identity), so splits share one tensor.
    """

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor | None = None
    ) -> None:
        rows = torch.arange(labels.shape[0]) if rows is None else rows.long()
        if rows.shape != labels.shape:
            raise ValueError("rows and labels must have the same length")
        self.images = images
        self.labels = labels
        self.rows = rows

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(
        self, key: tuple[int, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        aug_seed, indices = key
        return self.images[self.rows[indices]], self.labels[indices], torch.tensor(aug_seed)


class EpochBatchSampler(Sampler):
    """Yields ``(aug_seed, indices)`` batches; reshuffled per epoch via ``set_epoch``.

    ``weights`` (one per item) switches to sampling ``len`` items with replacement.
    ``augment=False`` gives every batch ``aug_seed = -1``.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        weights: torch.Tensor | None = None,
        augment: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        if weights is not None and weights.shape != (n,):
            raise ValueError(f"weights must have shape ({n},); got {tuple(weights.shape)}")
        self.n = n
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.weights = weights
        self.augment = augment
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return (self.n + self.batch_size - 1) // self.batch_size

    def order(self) -> torch.Tensor:
        """The item order of the current epoch."""
        g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, 0x5A4D))
        if self.weights is not None:
            return torch.multinomial(self.weights.double(), self.n, replacement=True, generator=g)
        if self.shuffle:
            return torch.randperm(self.n, generator=g)
        return torch.arange(self.n)

    def __iter__(self) -> Iterator[tuple[int, torch.Tensor]]:
        order = self.order()
        for b, start in enumerate(range(0, self.n, self.batch_size)):
            seed = derive_seed(self.seed, self.epoch, b) if self.augment else NO_AUGMENTATION
            yield seed, order[start : start + self.batch_size]
