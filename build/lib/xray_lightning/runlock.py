"""One writer per run dir: a lock file that refuses a second live run and takes over a dead one's.

Two runs started into one ``hydra.run.dir`` (the same second, or a copied command) used to mix
their checkpoints, TensorBoard events and metrics.json. ``RunLock`` writes ``<run dir>/.run.lock``
(pid, host, start time) with ``O_EXCL``; a second run finds it and stops with one line saying
who holds it. A lock whose process is gone (same host, pid not alive) is stale and taken over.
Only the process that writes results takes it (DDP ranks > 0 share their rank zero's dir).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from xray_lightning.cluster import is_global_zero
from xray_lightning.errors import XrayLightningError

LOCK_FILE = ".run.lock"


class RunDirBusyError(XrayLightningError):
    """Another live run writes into this run dir."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """``with RunLock(run_dir):`` holds ``run_dir/.run.lock`` for the run (see module doc)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self.held = False

    def _claim(self) -> bool:
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle)
        return True

    def _holder(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def acquire(self) -> None:
        if not is_global_zero():  # DDP ranks > 0 write nothing: rank zero holds the lock
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._claim():
                self.held = True
                return
            holder = self._holder()
            pid, host = holder.get("pid"), holder.get("host")
            same_host = host == socket.gethostname()
            if isinstance(pid, int) and same_host and not _alive(pid):
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            if not holder:  # being written right now, or unreadable: look again
                time.sleep(0.1)
                continue
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
            raise RunDirBusyError(
                f"run dir {self.path.parent} is in use by pid {pid} on {host} since {since}: "
                "choose another hydra.run.dir (or stop that run"
                + (")" if same_host else f"; if it is dead, delete {self.path})")
            )
        raise RunDirBusyError(f"could not take the lock {self.path}: it keeps changing")

    def release(self) -> None:
        if self.held and self._holder().get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
