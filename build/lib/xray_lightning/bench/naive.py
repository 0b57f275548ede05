"""The naive baseline, done the report's way: one JPEG opened with PIL per item in a standard
``Dataset`` + ``DataLoader``, and a plain fp32 PyTorch loop (no Lightning, no autocast, default
memory format, torch's default Adam kernel). Same network, loss and optimiser algorithm as our
path; only the machinery differs (ours: in-memory batches, the precision and memory format
``auto`` picks for the machine, the fused Adam kernel)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from xray_lightning.bench.machine import sync


class PILImageDataset(Dataset):
    """Item i: ``paths[i]`` decoded with PIL (grayscale), then ``transform`` -> float [1, H, W]."""

    def __init__(self, paths: list[Path], labels: torch.Tensor, transform: Callable) -> None:
        self.paths, self.labels, self.transform = paths, labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        with Image.open(self.paths[i]) as image:
            x = self.transform(image.convert("L"))
        return x, self.labels[i]


def pil_transform(size: int, mean: float, std: float, *augment: Callable) -> Callable:
    """Resize, the given PIL augmentations, ToTensor, Normalize: the per-item tutorial pipeline."""
    return T.Compose([T.Resize((size, size)), *augment, T.ToTensor(), T.Normalize([mean], [std])])


def naive_loader(
    dataset: PILImageDataset, batch_size: int, shuffle: bool, workers: int
) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers)


def timed_batches(
    batches: Iterable[Any], warmup: int, limit: int, step: Callable[[Any], int], device
) -> dict[str, float]:
    """Run ``step`` on ``warmup`` + ``limit`` batches; images/s over the last ``limit`` (data
    loading included, as a training loop sees it)."""
    it: Iterator[Any] = iter(batches)
    for _ in range(warmup):
        step(next(it))
    sync(device)
    images, start = 0, time.perf_counter()
    for _, batch in zip(range(limit), it, strict=False):
        images += step(batch)
    sync(device)
    seconds = time.perf_counter() - start
    if images == 0:
        raise ValueError(
            f"no batch left to time after {warmup} warm-up batches: the split is too small "
            "(lower --warmup-batches or the batch size)"
        )
    return {"images": images, "seconds": round(seconds, 3), "img_s": round(images / seconds, 1)}


def train_plain(
    net: nn.Module,
    loader: DataLoader,
    device: torch.device,
    lr: float,
    warmup: int,
    limit: int,
) -> dict[str, float]:
    """A plain fp32 training loop (binary BCE on the one logit, Adam) over the naive loader."""
    net = net.to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    criterion = nn.BCEWithLogitsLoss()

    def step(batch: tuple[torch.Tensor, torch.Tensor]) -> int:
        x, y = batch[0].to(device), batch[1].to(device)
        optimizer.zero_grad()
        loss = criterion(net(x)[:, 0], y.float())
        loss.backward()
        optimizer.step()
        return x.shape[0]

    return timed_batches(loader, warmup, limit, step, device)


@torch.no_grad()
def infer_plain(
    net: nn.Module, loader: DataLoader, device: torch.device, warmup: int, limit: int
) -> dict[str, float]:
    """fp32 forward passes (eval mode, sigmoid) over the naive loader."""
    net = net.to(device).eval()

    def step(batch: tuple[torch.Tensor, torch.Tensor]) -> int:
        x = batch[0].to(device)
        torch.sigmoid(net(x)[:, 0]).cpu()
        return x.shape[0]

    return timed_batches(loader, warmup, limit, step, device)
