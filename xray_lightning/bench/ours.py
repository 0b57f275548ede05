"""Our training path, as ``python -m xray_lightning.train`` runs it: the composed config tree
(precision and channels_last ``auto``: resolved for this machine), ``XrayDataModule`` and the
LightningModule through a ``pl.Trainer``, timed by a callback over a fixed number of batches
after warm-up."""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from xray_lightning import paths
from xray_lightning.bench.machine import sync
from xray_lightning.builders import build_callbacks, build_datamodule, build_module

CONFIG_DIR = str(paths.CONFIG_DIR)
BF16_PRECISIONS = ("bf16-mixed", "bf16", "bf16-true")
MAIN_JOB = "fast"  # --models fast: experiment=fast's network, input size and data settings


def bench_config(
    root: Path,
    output_dir: Path,
    model: str,
    batch_size: int,
    device: torch.device,
    overrides: Sequence[str] = (),
) -> DictConfig:
    """``conf/train.yaml`` for stage 1 with this model and batch size; nothing written but the
    trainer's default root (no logger, no checkpoints, no progress bar)."""
    selection = ["experiment=fast"] if model == MAIN_JOB else [f"net={model}"]
    base = [
        f"data.root={root}",
        *selection,
        f"data.batch_size={batch_size}",
        f"paths.output_dir={output_dir}",
        "trainer.enable_progress_bar=false",
        "+trainer.enable_checkpointing=false",
        "trainer.limit_val_batches=0",
    ]
    if device.type == "cuda":
        base.append("trainer=gpu")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[*base, *overrides])
    with open_dict(cfg):
        cfg.logger = None
        cfg.callbacks.model_checkpoint = None  # monitors val/acc: no validation here
        cfg.callbacks.lr_monitor = None
    return cfg


class BatchTimer(pl.Callback):
    """Images/s over the training batches after the first ``warmup`` (data fetch included),
    and the wall time of each epoch (start to next start, or to the end of training)."""

    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup, self.device = warmup, device
        self.seen = self.images = 0
        self.start: float | None = None
        self.end: float | None = None
        self.epoch_starts: list[float] = []
        self.finished: float | None = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        sync(self.device)
        self.epoch_starts.append(time.perf_counter())

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        sync(self.device)
        now = time.perf_counter()
        self.seen += 1
        if self.seen == self.warmup:
            self.start = now
        elif self.seen > self.warmup:
            self.images += int(batch[0].shape[0])
            self.end = now

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        sync(self.device)
        self.finished = time.perf_counter()

    def result(self) -> dict[str, Any]:
        if self.start is None or self.end is None or self.images == 0:
            raise RuntimeError(
                f"only {self.seen} training batches ran: need more than the {self.warmup} "
                "warm-up batches (raise --limit-batches or lower --warmup-batches)"
            )
        seconds = self.end - self.start
        marks = [*self.epoch_starts, self.finished or self.end]
        epochs = [round(b - a, 3) for a, b in zip(marks, marks[1:], strict=False)]
        return {
            "images": self.images,
            "seconds": round(seconds, 3),
            "img_s": round(self.images / seconds, 1),
            "epoch_s": epochs,
        }


def train_ours(
    cfg: DictConfig,
    warmup: int,
    limit: int | None,
    epochs: int = 1,
    data_on_device: bool = False,
    compile_mode: str | None = None,
) -> dict[str, Any]:
    """Fit ``epochs`` epochs of ``warmup + limit`` batches (``limit`` None: whole epochs).

    ``data_on_device`` moves the decoded uint8 dataset to the accelerator once, so batches are
    indexed there and never cross the bus; ``compile_mode`` runs the network under torch.compile.
    """
    device = torch.device("cuda" if cfg.trainer.accelerator == "gpu" else "cpu")
    with open_dict(cfg):
        cfg.trainer.max_epochs = epochs
        cfg.trainer.limit_train_batches = 1.0 if limit is None else warmup + limit
    pl.seed_everything(cfg.seed, verbose=False)
    started = time.perf_counter()
    datamodule = build_datamodule(cfg)
    setup_s = time.perf_counter() - started
    if data_on_device:
        datamodule.data.images = datamodule.data.images.to(device)
    module = build_module(cfg, datamodule)
    if compile_mode:
        mode = None if compile_mode == "default" else compile_mode
        module.net = torch.compile(module.net, mode=mode)
    timer = BatchTimer(warmup, device)
    trainer = instantiate(cfg.trainer, callbacks=[*build_callbacks(cfg), timer], logger=False)
    trainer.fit(module, datamodule=datamodule)
    out = timer.result()
    out["setup_s"] = round(setup_s, 3)
    out["train_images_per_epoch"] = int(len(datamodule.split_labels("train")))
    out["precision"] = str(cfg.trainer.precision)
    out["channels_last"] = bool(cfg.get("channels_last", False))
    out["_module"], out["_datamodule"] = module, datamodule
    return out


@torch.inference_mode()
def infer_ours(
    module: Any,
    datamodule: Any,
    precision: str,
    warmup: int,
    limit: int,
    device: torch.device,
) -> dict[str, Any]:
    """``predict_proba`` on the DataModule's eval loader (train split in file order, batches of
    ``data.eval_batch_size``), in the training precision; what val/test evaluation does."""
    from xray_lightning.bench.naive import timed_batches

    module.to(device).eval()  # the Trainer hands the module back on the CPU after fit
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if precision in BF16_PRECISIONS
        else nullcontext()
    )

    def step(batch: Any) -> int:
        images, _ = datamodule.transform_batch([t.to(device) for t in batch], train=False)
        with autocast:
            module.predict_proba(images).cpu()
        return images.shape[0]

    return timed_batches(datamodule.split_dataloader("train"), warmup, limit, step, device)
