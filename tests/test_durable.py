"""Crash safety: atomic checkpoints and records, last.ckpt every epoch."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch
from hydra_utils import compose_train

from xray_lightning import durable
from xray_lightning.durable import DiskFullError, save_torch_atomic, write_text_atomic
from xray_lightning.modules.checkpoints import read_checkpoint
from xray_lightning.train import run


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_a_writer_dying_halfway_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "last.ckpt"
    save_torch_atomic({"epoch": 1, "w": torch.ones(1000)}, target)

    def die_halfway(fd: int) -> None:  # the bytes are written, the process dies before rename
        raise KeyboardInterrupt

    monkeypatch.setattr(durable.os, "fsync", die_halfway)
    with pytest.raises(KeyboardInterrupt):
        save_torch_atomic({"epoch": 2, "w": torch.zeros(1000)}, target)
    assert torch.load(target, weights_only=True)["epoch"] == 1
    assert leftovers(tmp_path) == []


def test_a_full_disk_gives_one_line_and_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "metrics.json"
    write_text_atomic(target, '{"status": "ok"}\n')
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, fd: int, mode: str) -> None:
            self.handle = real_fdopen(fd, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.handle.close()

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(durable.os, "fdopen", FullDisk)
    with pytest.raises(DiskFullError) as caught:
        write_text_atomic(target, '{"status": "failed"}\n')
    message = str(caught.value)
    assert "\n" not in message and str(target) in message and "bytes" in message
    assert target.read_text() == '{"status": "ok"}\n'
    assert leftovers(tmp_path) == []


def test_a_save_killed_by_a_signal_never_truncates_the_target(tmp_path: Path) -> None:
    """A child process killed (SIGKILL) while it rewrites a checkpoint in a loop."""
    import signal
    import subprocess
    import sys
    import time

    target = tmp_path / "last.ckpt"
    save_torch_atomic({"epoch": 0, "w": torch.ones(2_000_000)}, target)
    code = (
        "import torch, sys\n"
        "from xray_lightning.durable import save_torch_atomic\n"
        "i = 0\n"
        "while True:\n"
        "    i += 1\n"
        f"    save_torch_atomic({{'epoch': i, 'w': torch.ones(2_000_000)}}, {str(target)!r})\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(4.0)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    loaded = torch.load(target, weights_only=True)  # whole: either the old or a new version
    assert loaded["w"].shape == (2_000_000,)


def test_trainer_saves_through_the_atomic_io_and_last_every_epoch(
    synthetic_root: Path, tmp_path: Path
) -> None:
    # lr 0 keeps val/acc flat: only epoch 1 is a "best"; last.ckpt must still follow every epoch
    overrides = ["trainer.max_epochs=3", "optimizer.lr=0.0", "scheduler=none"]
    result = run(compose_train(synthetic_root, tmp_path, overrides, fast=False))
    assert result["status"] == "ok"
    last = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert last["epoch"] == 2  # the third epoch (0-based), not the best one
    assert result["best_epoch"] == 0
    assert leftovers(tmp_path / "checkpoints") == []


def test_enospc_on_a_checkpoint_save_keeps_the_earlier_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xray_lightning.callbacks.checkpoint import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1, "state_dict": {"w": torch.ones(10)}}, target)
    real_fdopen = os.fdopen

    def full_disk(fd: int, mode: str):
        handle = real_fdopen(fd, mode)

        def write(data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        handle.write = write  # type: ignore[method-assign]
        return handle

    monkeypatch.setattr(durable.os, "fdopen", full_disk)
    with pytest.raises(DiskFullError, match=r"no space left to write .*last\.ckpt: it needs"):
        io.save_checkpoint({"epoch": 2, "state_dict": {"w": torch.zeros(10)}}, target)
    assert torch.load(target, weights_only=True)["epoch"] == 1
    assert leftovers(tmp_path) == []
