"""Decode one image file (PNG, JPEG, ... or DICOM) into the uint8 grayscale tensor the models
see (shared with predict)."""

from __future__ import annotations

import hashlib
import io
import stat
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .dicom import dicom_to_gray, is_dicom
from .errors import BadImageError, TooManyPixelsError
from .pixel_ops import resize_u8

SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})
EXPECT_MODES = ("L",)
# Limits for one input, checked before reading (bytes) and before decoding (pixels), so a hostile
# or mistaken file cannot take the machine's memory: a 40-Mpx 16-bit image peaks near 0.6 GB here.
# Real chest X-rays are at most ~4k x 4k (16 Mpx).
MAX_FILE_BYTES = 128 * 2**20
MAX_PIXELS = 40_000_000
ROW_BLOCK = 256  # rows converted at a time from 16 bits


def _to_gray_array(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> 8-bit grayscale array (16-bit scaled, not clipped)."""
    if img.mode == "L":
        return np.asarray(img, dtype=np.uint8)
    if img.mode in SIXTEEN_BIT_MODES:
        arr = np.asarray(img)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        out = np.empty(arr.shape, dtype=np.uint8)
        for start in range(0, arr.shape[0], ROW_BLOCK):  # row blocks: no full-size float copy
            block = arr[start : start + ROW_BLOCK].astype(np.float32)  # 16-bit values are exact
            block *= 255.0 / top
            out[start : start + ROW_BLOCK] = np.clip(np.rint(block, out=block), 0, 255)
        return out
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
    max_pixels: int = MAX_PIXELS,
) -> torch.Tensor:
    """Decode image bytes (read from ``path``) into a uint8 tensor [image_size, image_size].

    Raises BadImageError(path, reason) for empty, truncated or non-image data, images of more
    than ``max_pixels`` pixels (checked from the header, before decoding), and, when
    ``expect_size``/``expect_mode`` are set, for images of another size or mode. A JPEG much
    larger than ``image_size`` is decoded at a reduced scale (PIL's draft mode) first.
    """
    if expect_mode is not None and expect_mode not in EXPECT_MODES:
        raise ValueError(f"expect_mode must be one of {EXPECT_MODES} or None; got {expect_mode!r}")
    if len(data) == 0:
        raise BadImageError(path, "empty file (0 bytes)")
    if is_dicom(data, path):
        if expect_mode is not None or expect_size is not None:
            raise BadImageError(path, "a DICOM file: the dataset expects 8-bit grayscale images")
        return _resized(dicom_to_gray(data, path, max_pixels), image_size, expect_size)
    try:
        with warnings.catch_warnings():  # our own pixel limit is lower than PIL's warning one
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
        with img:
            width, height = img.size
            if width * height > max_pixels:
                raise TooManyPixelsError(
                    path,
                    f"{width}x{height} = {width * height:,} pixels, more than the limit of "
                    f"{max_pixels:,} (a chest X-ray is at most ~16 Mpx)",
                )
            if expect_size is None and min(width, height) >= 4 * image_size:
                img.draft("L", (2 * image_size, 2 * image_size))  # JPEG only; a no-op elsewhere
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
    except Image.DecompressionBombError as exc:
        reason = f"more pixels than the limit of {max_pixels:,} ({exc})"
        raise TooManyPixelsError(path, reason) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadImageError(path, f"unreadable or truncated image ({exc})") from None
    return _resized(arr, image_size, expect_size)


def _resized(arr: np.ndarray, image_size: int, expect_size: int | None) -> torch.Tensor:
    factor = min(arr.shape) // (2 * image_size)
    if expect_size is None and factor >= 2:  # a large image: box-reduce first (less memory)
        arr = np.asarray(Image.fromarray(arr).reduce(factor))
    tensor = torch.from_numpy(arr.copy())
    if tensor.shape != (image_size, image_size):
        tensor = resize_u8(tensor, image_size)
    return tensor


def load_image(
    path: Path | str,
    image_size: int,
    expect_size: int | None = None,
    expect_mode: str | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> torch.Tensor:
    """Read and decode one image file into a uint8 tensor [H, W] (H = W = image_size).

    Raises BadImageError(path, reason) when the file is unreadable or not as expected.
    """
    p = Path(path)
    data = read_regular_file(p, max_bytes)
    return decode_image(data, p, image_size, expect_size, expect_mode, max_pixels)


def read_regular_file(path: Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes`` (checked before
    reading: a FIFO would block forever, a device or a huge file would fill the memory)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise BadImageError(path, f"cannot read the file ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = (
            "a FIFO"
            if stat.S_ISFIFO(info.st_mode)
            else "a socket"
            if stat.S_ISSOCK(info.st_mode)
            else "a device"
            if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
            else "not a file"
        )
        raise BadImageError(path, f"not a regular file ({kind}); expected an image file")
    if info.st_size > max_bytes:
        raise BadImageError(
            path, f"{info.st_size:,} bytes, more than the limit of {max_bytes:,} for one image"
        )
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise BadImageError(path, f"cannot read the file ({exc.strerror or exc})") from None
    if len(data) > max_bytes:  # it grew after the check
        raise BadImageError(path, f"more than the limit of {max_bytes:,} bytes for one image")
    return data


def pixel_digest(image: torch.Tensor) -> str:
    """Digest of a decoded image's pixels: equal for byte-identical files (and re-encodes)."""
    return hashlib.blake2b(image.contiguous().numpy().tobytes(), digest_size=16).hexdigest()
