"""Batched tensor transforms: deterministic preprocessing, normalisation, augmentation.

Deterministic steps (border crop, denoise, equalise) run once on the uint8 images
(``preprocess_u8``); normalisation and augmentation run per batch, on whatever device the batch
is on (``augment`` takes the uint8 batch and normalises in the same passes). ``prepare_batch``
chains the deterministic steps and normalisation for raw images (predict), from the JSON-able
spec given by ``XrayDataModule.preprocess_spec()``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as nnf

from xray_lightning.data.pixel_ops import equalize_u8, resize_u8
from xray_lightning.data.settings import Augmentation, Preprocessing
from xray_lightning.settings import validate

_CHUNK = 512


def validate_preprocessing(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """The preprocessing switches with defaults filled in (``ConfigError`` naming each bad key)."""
    return validate(Preprocessing, cfg, "data.preprocessing")


def validate_augmentation(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """The augmentation switches with defaults filled in (``ConfigError`` naming each bad key)."""
    return validate(Augmentation, cfg, "data.augmentation")


def _as_nchw(images: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if images.ndim == 3:
        return images[:, None], True
    if images.ndim == 4 and images.shape[1] == 1:
        return images, False
    raise ValueError(f"expected images [B,H,W] or [B,1,H,W]; got shape {tuple(images.shape)}")


def median3x3(images: torch.Tensor) -> torch.Tensor:
    """3x3 median filter (reflect padding) of uint8 images [B,1,H,W]."""
    b, c, h, w = images.shape
    padded = nnf.pad(images.float(), (1, 1, 1, 1), mode="reflect")
    patches = nnf.unfold(padded, kernel_size=3)  # [B, 9, H*W]
    return patches.median(dim=1).values.reshape(b, c, h, w).to(images.dtype)


def preprocess_u8(
    images: torch.Tensor, preprocessing: Mapping[str, Any], image_size: int | None = None
) -> torch.Tensor:
    """Apply the deterministic switches to uint8 images: border crop, denoise, equalise.

    Accepts [B,H,W] or [B,1,H,W] and returns the same layout, uint8, ``image_size`` square.
    """
    pre = validate_preprocessing(preprocessing)
    x, squeeze = _as_nchw(images)
    if x.dtype != torch.uint8:
        raise ValueError(f"preprocess_u8 expects uint8 images; got {x.dtype}")
    size = image_size or x.shape[-1]
    needs_resize = tuple(x.shape[-2:]) != (size, size)
    if not (pre["border_crop"] or pre["denoise"] or pre["equalize"] or needs_resize):
        return images
    out = torch.empty((x.shape[0], 1, size, size), dtype=torch.uint8, device=x.device)
    for start in range(0, x.shape[0], _CHUNK):
        chunk = x[start : start + _CHUNK]
        h, w = chunk.shape[-2:]
        cut_h, cut_w = round(pre["border_crop"] * h), round(pre["border_crop"] * w)
        if cut_h or cut_w:
            chunk = chunk[..., cut_h : h - cut_h, cut_w : w - cut_w]
        if tuple(chunk.shape[-2:]) != (size, size):
            chunk = resize_u8(chunk, size)
        if pre["denoise"] == "median":
            chunk = median3x3(chunk)
        elif pre["denoise"] == "gaussian":
            from torchvision.transforms.v2.functional import gaussian_blur

            chunk = gaussian_blur(chunk, kernel_size=[3, 3], sigma=[0.8, 0.8])
        if pre["equalize"]:
            chunk = equalize_u8(chunk)
        out[start : start + _CHUNK] = chunk
    return out[:, 0] if squeeze else out


def image_stats(images: torch.Tensor, rows: torch.Tensor | None = None) -> tuple[float, float]:
    """Exact mean and std of uint8 images (of ``rows`` only, if given) on the [0, 1] scale.

    Computed from a 256-bin histogram, chunk by chunk, without copying the selected images.
    """
    rows = torch.arange(images.shape[0]) if rows is None else rows.long()
    if rows.numel() == 0 or images[:1].numel() == 0:
        raise ValueError("cannot compute mean/std of an empty image set")
    hist = torch.zeros(256, dtype=torch.float64)
    for start in range(0, rows.numel(), _CHUNK):
        chunk = images[rows[start : start + _CHUNK]]
        hist += torch.bincount(chunk.flatten(), minlength=256).double()
    values = torch.arange(256, dtype=torch.float64) / 255.0
    n = hist.sum()
    mean = float((hist * values).sum() / n)
    var = float((hist * (values - mean) ** 2).sum() / n)
    return mean, max(math.sqrt(var), 1e-6)


def to_float(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [B,H,W] or [B,1,H,W] -> float32 [B,1,H,W] on [0, 1]."""
    x, _ = _as_nchw(images_u8)
    return x.to(torch.float32).mul_(1.0 / 255.0)


def normalize(x: torch.Tensor, mean: float | None, std: float | None) -> torch.Tensor:
    """(x - mean) / std, or x unchanged when mean/std are None (normalisation off)."""
    if mean is None or std is None:
        return x
    return x.sub(mean).div_(std)


@functools.lru_cache(maxsize=8)
def _base_axes(
    h: int, w: int, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel centres in [-1, 1] (align_corners=False) along x [w] and along y [h, 1]."""
    xs = (torch.arange(w, device=device, dtype=dtype) * 2 + 1) / w - 1
    ys = (torch.arange(h, device=device, dtype=dtype) * 2 + 1) / h - 1
    return xs, ys[:, None]


def _affine_grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Same values as ``affine_grid(theta, [B,1,h,w], align_corners=False)``, built faster.

    The map is separable, grid[b,i,j] = theta[b,:,0] x_j + (theta[b,:,1] y_i + theta[b,:,2]),
    so one broadcast add of a [B,2,1,w] and a [B,2,h,1] term writes it. It comes back as a
    [B,h,w,2] view of planar [B,2,h,w] memory: grid_sample reads x and y planes contiguous along
    W as fast as an interleaved grid, while making the grid interleaved costs a strided transpose
    (on CPU, with a GEMM on a [h*w, 3] base grid, that took longer than the warp itself).
    """
    xs, ys = _base_axes(h, w, theta.device, theta.dtype)
    along_x = theta[:, :, 0, None, None] * xs  # [B, 2, 1, w]
    along_y = torch.addcmul(theta[:, :, 2, None, None], theta[:, :, 1, None, None], ys)  # [B,2,h,1]
    return torch.add(along_x, along_y).permute(0, 2, 3, 1)


def _draw(b: int, aug: dict[str, Any], generator: torch.Generator, per_unit: float) -> np.ndarray:
    """Per-image parameters [B, 8]: the inverse affine map theta [2, 3] (output pixel -> input
    location, so content scales by `scale`), then gain and mean factor for brightness/contrast.

    Uniform within +-amount, float64, in the order of one rand(B) call per parameter (angle,
    scale, tx, ty, [hflip], brightness, contrast; the CPU generator fills rand(4, B) in order),
    so a seed keeps its images. The arithmetic runs in NumPy: on 32 numbers, each torch op's
    fixed overhead dominates.
    """
    u = np.empty((6, b))
    u[:4] = torch.rand(4, b, generator=generator, dtype=torch.float64).numpy()
    flip = (torch.rand(b, generator=generator) < 0.5).numpy() if aug["hflip"] else None
    u[4:] = torch.rand(2, b, generator=generator, dtype=torch.float64).numpy()
    u = u * 2 - 1
    rotation, translate = math.radians(aug["rotation"]), 2 * aug["translate"]  # grid: [-1, 1]
    u *= np.array(
        [rotation, aug["scale"], translate, translate, aug["brightness"], aug["contrast"]]
    )[:, None]
    angle, scale, tx, ty, bright, contrast = u
    scale, bright, contrast = 1.0 + scale, 1.0 + bright, 1.0 + contrast
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    out = np.empty((b, 8))
    out[:, 0], out[:, 1], out[:, 2] = cos, -sin, tx
    out[:, 3], out[:, 4], out[:, 5] = sin, cos, ty
    if flip is not None:
        out[flip, 0] *= -1  # mirror: negate the x_out column of theta
        out[flip, 3] *= -1
    # contrast c around the image mean m, then brightness k, on the [0, 1] scale (v = unit x):
    # (v - m) c k + m k = v (c k) + m (1 - c) k; per_unit folds 1/255 and 1/std in
    out[:, 6] = contrast * bright * per_unit
    out[:, 7] = (1.0 - contrast) * bright * per_unit
    return out


def augment(
    x: torch.Tensor,
    augmentation: Mapping[str, Any],
    generator: torch.Generator,
    mean: float | None = None,
    std: float | None = None,
) -> torch.Tensor:
    """Random site shifts (``site``), affine (rotation, scale, translation), hflip, blur,
    brightness and contrast per image.

    ``x`` is uint8 [B,1,H,W] or [B,H,W] (0..255), or float [B,1,H,W] on [0, 1]. Parameters are
    drawn on the CPU from ``generator`` (so they depend only on its seed) and the warp runs on
    ``x``'s device: bilinear (or nearest, ``interpolation``), zero padding, i.e. black outside.
    Returns a new float [B,1,H,W] (float32 from uint8) on [0, 1], or ``normalize``d when
    ``mean`` and ``std`` are given: up to float rounding, ``normalize(augment(to_float(x)),
    mean, std)`` in fewer passes. Warping is linear and zero padding maps 0 to 0, so uint8 values
    warp as they are; 1/255, brightness, contrast and the normalisation fold into one per-image
    a x + b, then one clamp (clamping to [0, 1], then normalising, == clamping to the
    normalised bounds). ``augmentation`` is already validated (``validate_augmentation``, done
    once by the DataModule), so nothing is re-checked per batch.
    """
    aug = augmentation
    if aug["site"]:
        x = _site_augment(x, aug["site"], generator)
    if x.dtype == torch.uint8:
        x, _ = _as_nchw(x)
        x, unit = x.to(torch.float32, memory_format=torch.contiguous_format), 1.0 / 255.0
    else:
        unit = 1.0
    b, _, h, w = x.shape
    if mean is not None and std is not None:  # normalising: divide by std, subtract mean/std
        per_unit, low, high = unit / std, -mean / std, (1.0 - mean) / std
    else:
        per_unit, low, high = unit, 0.0, 1.0
    # one host -> device copy of every per-image number
    params_t = torch.from_numpy(_draw(b, aug, generator, per_unit))
    params_t = params_t.to(device=x.device, dtype=x.dtype)
    if aug["rotation"] or aug["scale"] or aug["translate"] or aug["hflip"]:
        grid = _affine_grid(params_t[:, :6].view(b, 2, 3), h, w)
        mode = aug["interpolation"]
        x = nnf.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)
    elif unit == 1.0:
        x = x.clone(memory_format=torch.contiguous_format)  # the caller's x is never written
    if aug["blur"]:
        blur_per_image(x, torch.rand(b, generator=generator, dtype=torch.float64) * aug["blur"])
    gain, m_scale = params_t[:, 6:7], params_t[:, 7:8]
    flat = x.view(b, -1)
    if aug["contrast"]:
        offset = flat.mean(dim=1, keepdim=True).mul_(m_scale).add_(low)
        flat.mul_(gain).add_(offset)  # two vectorised passes; addcmul with [B,1] is 4x slower
    else:  # passes that would multiply by 1 or add 0 are skipped
        if aug["brightness"] or per_unit != 1.0:
            flat.mul_(gain)
        if low:
            flat.add_(low)
    return x.clamp_(low, high)


def _site_augment(x: torch.Tensor, probability: float, generator: torch.Generator) -> torch.Tensor:
    """``shifts.site_augment`` on uint8 images, or on float ones on [0, 1] via 8-bit grey levels
    (the precision every image of this dataset is stored in)."""
    from xray_lightning.shifts import site_augment

    if x.dtype == torch.uint8:
        return site_augment(_as_nchw(x)[0], probability, generator)
    u8 = x.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    shifted = site_augment(u8, probability, generator)
    changed = (shifted != u8).flatten(1).any(dim=1)  # the other images stay exactly as given
    out = x.clone()
    out[changed] = shifted[changed].to(x.dtype).mul_(1.0 / 255.0)
    return out


def blur_per_image(x: torch.Tensor, sigmas: torch.Tensor) -> None:
    """Gaussian blur of each image of ``x`` [B,1,H,W] in place, image i with ``sigmas[i]`` pixels.

    Makes a model less sensitive to how sharp an X-ray is: the test split's normal images are
    less sharp than the train split's (experiments/diagnostics/shift.py). Sigmas under 0.1 pixel
    leave the image as it is.
    """
    from torchvision.transforms.v2.functional import gaussian_blur

    for i, sigma in enumerate(sigmas.tolist()):
        if sigma >= 0.1:
            size = 2 * math.ceil(2 * sigma) + 1
            x[i] = gaussian_blur(x[i], kernel_size=[size, size], sigma=[sigma, sigma])


def prepare_batch(images_u8: torch.Tensor, spec: Mapping[str, Any]) -> torch.Tensor:
    """Raw uint8 images (from ``images.load_image``) -> the model's float input [B,1,H,W].

    ``spec`` is ``XrayDataModule.preprocess_spec()``: the same deterministic preprocessing and
    normalisation the DataModule applies, so training and predict cannot drift.
    """
    pre = spec["preprocessing"]
    x = preprocess_u8(images_u8, pre, int(spec["image_size"]))
    mean, std = (spec["mean"], spec["std"]) if pre.get("normalize", True) else (None, None)
    return normalize(to_float(x), mean, std)
