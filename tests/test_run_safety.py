"""One writer per run dir, finished records kept, interrupted runs recorded and exit 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra_utils import compose_train

from xray_lightning.errors import CheckpointError
from xray_lightning.runlock import LOCK_FILE, RunDirBusyError, RunLock
from xray_lightning.train import run

REPO = Path(__file__).resolve().parents[1]


def test_a_second_live_writer_is_refused(tmp_path: Path) -> None:
    with RunLock(tmp_path):
        holder = json.loads((tmp_path / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid()
        with pytest.raises(RunDirBusyError, match=f"in use by pid {os.getpid()}"):
            RunLock(tmp_path).acquire()
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    record = {"pid": dead.pid, "host": socket.gethostname(), "started": time.time() - 60}
    (tmp_path / LOCK_FILE).write_text(json.dumps(record))
    with RunLock(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_two_training_runs_into_one_dir(synthetic_root: Path, tmp_path: Path) -> None:
    with RunLock(tmp_path):  # stands for a first run that is still training
        with pytest.raises(RunDirBusyError, match="choose another hydra.run.dir"):
            run(compose_train(synthetic_root, tmp_path, []))
    assert not (tmp_path / "metrics.json").exists()


def test_a_run_failing_before_training_keeps_a_finished_record(
    synthetic_root: Path, tmp_path: Path
) -> None:
    assert run(compose_train(synthetic_root, tmp_path, []))["status"] == "ok"
    good = (tmp_path / "metrics.json").read_text()
    typo = compose_train(synthetic_root, tmp_path, [f"ckpt_path={tmp_path}/checkpoints/lats.ckpt"])
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        run(typo)
    assert (tmp_path / "metrics.json").read_text() == good


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_records_interrupted_and_exits_130(
    sig: signal.Signals, synthetic_root: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "xray_lightning.train",
        f"data.root={synthetic_root}",
        "data.image_size=64",
        "data.cache_dir=null",
        "data.batch_size=8",
        "trainer.max_epochs=200",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={run_dir}",
    ]
    child = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    last = run_dir / "checkpoints" / "last.ckpt"
    while not last.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert last.exists(), "training never saved a checkpoint"
    child.send_signal(sig)
    output = child.communicate(timeout=60)[0].decode()
    assert child.returncode == 130, output[-2000:]
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["status"] == "interrupted" and "SIGINT/SIGTERM" in saved["reason"]
    assert not (run_dir / LOCK_FILE).exists()
