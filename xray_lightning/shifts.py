"""Synthetic site shifts: one X-ray as another scanner, export or compression might deliver it.

The official test split differs from train in ways a CNN picks up cheaply (its normals are less
sharp: experiments/diagnostics/shift.py). A recipe or an adaptation setting may be *chosen* on
val only, so robustness is measured on val images shifted by these functions, never on test.

Each shift maps uint8 images [B, H, W] or [B, 1, H, W] to uint8 images of the same shape and is
deterministic (the noise is seeded), so two runs shift the same image the same way.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as nnf

from xray_lightning.data.pixel_ops import resize_u8

Shift = Callable[[torch.Tensor], torch.Tensor]


def _gaussian(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Float Gaussian blur of [B, 1, H, W] (reflect padding), separable."""
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(images.dtype)
    x = nnf.pad(images, (radius, radius, radius, radius), mode="reflect")
    x = nnf.conv2d(x, kernel.view(1, 1, 1, -1))
    return nnf.conv2d(x, kernel.view(1, 1, -1, 1))


def _as_float(images: torch.Tensor) -> tuple[torch.Tensor, torch.Size]:
    if images.dtype != torch.uint8:
        raise ValueError(f"site shifts take uint8 images; got {images.dtype}")
    shape = images.shape
    return images.reshape(-1, 1, *shape[-2:]).float(), shape


def _to_u8(x: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    return x.round_().clamp_(0, 255).to(torch.uint8).reshape(shape)


def blur(sigma: float) -> Shift:
    """Gaussian blur: a softer detector or a smoothing reconstruction filter."""

    def shift(images: torch.Tensor) -> torch.Tensor:
        x, shape = _as_float(images)
        return _to_u8(_gaussian(x, sigma), shape)

    return shift


def sharpen(amount: float, sigma: float = 1.0) -> Shift:
    """Unsharp mask: x + amount (x - blur(x)), an edge-enhancing post-processing."""

    def shift(images: torch.Tensor) -> torch.Tensor:
        x, shape = _as_float(images)
        return _to_u8(x + amount * (x - _gaussian(x, sigma)), shape)

    return shift


def gamma(exponent: float) -> Shift:
    """Another display curve: 255 (x / 255) ** exponent."""

    def shift(images: torch.Tensor) -> torch.Tensor:
        x, shape = _as_float(images)
        return _to_u8((x / 255.0).pow_(exponent).mul_(255.0), shape)

    return shift


def downup(factor: float) -> Shift:
    """Saved at a lower resolution and resized back: ``factor`` of the side, then the side."""

    def shift(images: torch.Tensor) -> torch.Tensor:
        size = images.shape[-1]
        small = resize_u8(images, max(8, round(size * factor)))
        return resize_u8(small, size)

    return shift


def jpeg(quality: int) -> Shift:
    """Re-encoded as a JPEG of this quality (PIL, as most exports do)."""
    from PIL import Image

    def shift(images: torch.Tensor) -> torch.Tensor:
        flat = images.reshape(-1, *images.shape[-2:])
        out = torch.empty_like(flat)
        for i, image in enumerate(flat.numpy()):
            buffer = io.BytesIO()
            Image.fromarray(image, mode="L").save(buffer, format="JPEG", quality=quality)
            buffer.seek(0)
            out[i] = torch.from_numpy(np.asarray(Image.open(buffer).convert("L")).copy())
        return out.reshape(images.shape)

    return shift


def noise(std: float, seed: int = 0) -> Shift:
    """Additive Gaussian noise of ``std`` grey levels, the same draw for the same batch."""

    def shift(images: torch.Tensor) -> torch.Tensor:
        x, shape = _as_float(images)
        generator = torch.Generator().manual_seed(seed)
        return _to_u8(x + std * torch.randn(x.shape, generator=generator), shape)

    return shift


# Training-time site augmentation (``data.augmentation.site``): each kind with its strength range,
# strength drawn uniformly per image. Blur has its own key (``data.augmentation.blur``); gamma and
# contrast are left out because global histogram equalisation, which every recipe uses, maps an
# image and any monotone remapping of its grey levels to nearly the same input.
SITE_AUGMENTATIONS: dict[str, tuple[Callable[[float, int], Shift], float, float]] = {
    "sharpen": (lambda amount, _seed: sharpen(amount), 0.25, 1.5),
    "noise": (noise, 2.0, 10.0),  # noise(std, seed)
    "jpeg": (lambda quality, _seed: jpeg(round(quality)), 20.0, 90.0),
    "downup": (lambda factor, _seed: downup(factor), 0.4, 0.9),
}


def site_augment(
    images: torch.Tensor, probability: float, generator: torch.Generator
) -> torch.Tensor:
    """Each uint8 image of [B, 1, H, W], with ``probability``, as one random kind of
    ``SITE_AUGMENTATIONS`` at a random strength (and, for noise, a random seed) would deliver
    it; the others unchanged.

    Every draw comes from ``generator`` (CPU), so a seed keeps its images.
    """
    b = images.shape[0]
    chosen = (torch.rand(b, generator=generator) < probability).tolist()
    kinds = torch.randint(len(SITE_AUGMENTATIONS), (b,), generator=generator).tolist()
    amounts = torch.rand(b, generator=generator, dtype=torch.float64).tolist()
    seeds = torch.randint(2**31 - 1, (b,), generator=generator).tolist()
    if not any(chosen):
        return images
    out = images.clone()
    makers = list(SITE_AUGMENTATIONS.values())
    for i in (i for i in range(b) if chosen[i]):
        make, low, high = makers[kinds[i]]
        strength = low + (high - low) * amounts[i]
        out[i : i + 1] = make(strength, seeds[i])(images[i : i + 1].cpu()).to(images.device)
    return out


# The declared set (fixed 2026-12-01 before round 3 of experiments/accuracy.md was measured).
SITE_SHIFTS: dict[str, Shift] = {
    "blur_1.0": blur(1.0),
    "sharpen_1.0": sharpen(1.0),
    "gamma_0.7": gamma(0.7),
    "gamma_1.4": gamma(1.4),
    "downup_0.5": downup(0.5),
    "jpeg_25": jpeg(25),
    "noise_6": noise(6.0),
}
