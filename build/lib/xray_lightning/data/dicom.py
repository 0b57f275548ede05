"""DICOM files (hospital X-rays) to the 8-bit grayscale array the models see, with pydicom.

Pixel values go through the modality LUT (rescale slope and intercept), then the VOI LUT or the
window the file names (else its own min-max), are spread over 0-255, and MONOCHROME1 (white =
low) is inverted. 8-, 12- and 16-bit data, signed or not, are handled by pydicom. A multi-frame
file is refused (one image per file), and a transfer syntax that no installed decoder reads gets
an error naming it. Nothing here reads, returns or prints a patient tag.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .errors import BadImageError, TooManyPixelsError

PREAMBLE = 128  # bytes before the "DICM" magic in a DICOM Part 10 file
DICOM_SUFFIXES = frozenset({".dcm", ".dicom"})


def is_dicom(data: bytes, path: Path | str) -> bool:
    """A ``.dcm`` name, or the "DICM" magic after the 128-byte preamble (files without a suffix)."""
    return Path(path).suffix.lower() in DICOM_SUFFIXES or data[PREAMBLE : PREAMBLE + 4] == b"DICM"


def dicom_to_gray(data: bytes, path: Path | str, max_pixels: int) -> np.ndarray:
    """uint8 [H, W] of one single-frame DICOM image, or :class:`BadImageError`."""
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=Path(path).suffix.lower() in DICOM_SUFFIXES)
        rows, columns = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (InvalidDicomError, AttributeError, KeyError, TypeError, ValueError, EOFError) as exc:
        raise BadImageError(path, f"not a readable DICOM image ({type(exc).__name__})") from None
    if frames > 1:
        raise BadImageError(path, f"multi-frame DICOM ({frames} frames): one image per file")
    if rows * columns > max_pixels:
        raise TooManyPixelsError(
            path,
            f"{columns}x{rows} = {rows * columns:,} pixels, more than the limit of "
            f"{max_pixels:,} (a chest X-ray is at most ~16 Mpx)",
        )
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - pydicom's decoders raise many kinds
        named = f"{syntax.name} ({syntax})" if syntax is not None else "unknown"
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise BadImageError(
            path, f"cannot decode the DICOM transfer syntax {named}: {reason}"
        ) from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if pixels.ndim == 3:  # colour (pydicom gives RGB): the luminance, as PIL's "L" conversion
        from PIL import Image

        rgb = np.clip(pixels, 0, 255).astype(np.uint8)
        return np.asarray(Image.fromarray(rgb, "RGB").convert("L"), dtype=np.uint8)
    values = apply_modality_lut(pixels, ds).astype(np.float64)
    if "VOILUTSequence" in ds or "WindowCenter" in ds:
        values = apply_voi_lut(values, ds).astype(np.float64)
        # the VOI output range, as pydicom maps inputs far outside the window or LUT
        extremes = np.array([values.min() - 1e9, values.max() + 1e9])
        low, high = (float(v) for v in apply_voi_lut(extremes, ds))
    else:
        low, high = float(values.min()), float(values.max())
    if high <= low:
        gray = np.zeros(values.shape, dtype=np.uint8)
    else:
        gray = np.clip(np.rint((values - low) * (255.0 / (high - low))), 0, 255).astype(np.uint8)
    return 255 - gray if photometric == "MONOCHROME1" else gray
