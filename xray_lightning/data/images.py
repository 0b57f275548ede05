"""Decode one image file into the uint8 grayscale tensor the models see (shared with predict)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms.v2 import functional as F

from .errors import BadImageError

SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})
EXPECT_MODES = ("L",)


def _to_gray_array(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> 8-bit grayscale array (16-bit scaled, not clipped)."""
    if img.mode == "L":
        return np.asarray(img, dtype=np.uint8)
    if img.mode in SIXTEEN_BIT_MODES:
        arr = np.asarray(img).astype(np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        return np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8)
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        return np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return np.asarray(img.convert("RGB").convert("L"), dtype=np.uint8)


def decode_image(
    data: bytes,
    path: Path | str,
    image_size: int,
    expect_size: int | None = None,
    expect_mode: str | None = None,
) -> torch.Tensor:
    """Decode image bytes (read from ``path``) into a uint8 tensor [image_size, image_size].

    Raises BadImageError(path, reason) for empty, truncated or non-image data, and, when
    ``expect_size``/``expect_mode`` are set, for images of another size or mode.
    """
    if expect_mode is not None and expect_mode not in EXPECT_MODES:
        raise ValueError(f"expect_mode must be one of {EXPECT_MODES} or None; got {expect_mode!r}")
    if len(data) == 0:
        raise BadImageError(path, "empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            mode, size = img.mode, img.size
            if expect_mode is not None and mode != expect_mode:
                kind = " (16-bit)" if mode in SIXTEEN_BIT_MODES else ""
                raise BadImageError(path, f"mode {mode}{kind}, expected {expect_mode}")
            if expect_size is not None and size != (expect_size, expect_size):
                raise BadImageError(
                    path, f"size {size[0]}x{size[1]}, expected {expect_size}x{expect_size}"
                )
            arr = _to_gray_array(img)
    except BadImageError:
        raise
    except UnidentifiedImageError:
        raise BadImageError(path, "not an image (cannot identify the format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise BadImageError(path, f"unreadable or truncated image ({exc})") from None
    tensor = torch.from_numpy(arr.copy())
    if tensor.shape != (image_size, image_size):
        tensor = F.resize(tensor[None], [image_size, image_size], antialias=True)[0]
    return tensor


def load_image(
    path: Path | str,
    image_size: int,
    expect_size: int | None = None,
    expect_mode: str | None = None,
) -> torch.Tensor:
    """Read and decode one image file into a uint8 tensor [H, W] (H = W = image_size).

    Raises BadImageError(path, reason) when the file is unreadable or not as expected.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise BadImageError(p, f"cannot read the file ({exc.strerror or exc})") from None
    return decode_image(data, p, image_size, expect_size, expect_mode)


def pixel_digest(image: torch.Tensor) -> str:
    """Digest of a decoded image's pixels: equal for byte-identical files (and re-encodes)."""
    return hashlib.blake2b(image.contiguous().numpy().tobytes(), digest_size=16).hexdigest()
