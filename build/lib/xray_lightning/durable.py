"""Durable, atomic file writes: a good file is never replaced by a partial one.

Each write goes to a temporary file in the *destination* directory (so the final rename never
crosses filesystems and turns into a copy), is flushed and fsynced, then ``os.replace``d onto the
target; the temporary file is removed on any error. A full disk raises :class:`DiskFullError`
with one line naming the path and the bytes needed. ``callbacks.checkpoint.AtomicCheckpointIO``
routes Lightning's checkpoint saves (``last.ckpt``, ``best-*.ckpt``) through the same path.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from xray_lightning.errors import XrayLightningError


class DiskFullError(XrayLightningError, OSError):
    """No space left to write a file; the previous version of it is untouched."""


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | Path, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` atomically and durably (see module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            free = shutil.disk_usage(path.parent).free
            raise DiskFullError(
                f"no space left to write {path}: it needs {len(payload):,} bytes, "
                f"{free:,} are free; the previous {path.name} (if any) is kept"
            ) from None
        raise
    _fsync_dir(path.parent)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode())


def save_torch_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to memory, then :func:`write_bytes_atomic` (checkpoints are a few MB)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return write_bytes_atomic(path, buffer.getvalue())
