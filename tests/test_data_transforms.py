"""Batched transforms: deterministic preprocessing, augmentation, the seeded batch sampler."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as nnf

from xray_lightning.data.sampling import BatchTensorDataset, EpochBatchSampler
from xray_lightning.data.transforms import (
    _affine_grid,
    augment,
    image_stats,
    median3x3,
    normalize,
    preprocess_u8,
    to_float,
    validate_augmentation,
)


def checked_augment(x, settings, generator, **kwargs):
    """augment() takes validated settings (the DataModule validates once); tests give partial
    ones."""
    return augment(x, validate_augmentation(settings), generator, **kwargs)


def _images(n: int = 4, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 1, size, size), generator=g, dtype=torch.uint8)


def test_image_stats_are_exact() -> None:
    x = _images()
    mean, std = image_stats(x)
    ref = x.double() / 255
    assert abs(mean - float(ref.mean())) < 1e-9
    assert abs(std - float(ref.std(unbiased=False))) < 1e-9
    rows = torch.tensor([2, 0])
    assert abs(image_stats(x, rows)[0] - float(ref[rows].mean())) < 1e-9


def test_median_removes_salt_noise() -> None:
    x = torch.full((1, 1, 9, 9), 100, dtype=torch.uint8)
    x[0, 0, 4, 4] = 255
    out = median3x3(x)
    assert out.dtype == torch.uint8 and bool((out == 100).all())


def test_preprocessing_switches() -> None:
    x = _images(size=40)
    assert preprocess_u8(x, {}) is x  # nothing on: untouched
    eq = preprocess_u8(x // 4, {"equalize": True})  # low-contrast input gets stretched
    assert int(eq.max()) - int(eq.min()) > int((x // 4).max()) - int((x // 4).min())
    cropped = preprocess_u8(x, {"border_crop": 0.25})
    assert cropped.shape == x.shape
    center = torch.nn.functional.interpolate(x[:, :, 10:30, 10:30].float(), size=40)
    assert (cropped.float() - center).abs().mean() < (x.float() - center).abs().mean()
    blurred = preprocess_u8(x, {"denoise": "gaussian"})
    assert blurred.float().std() < x.float().std()
    assert preprocess_u8(x[:, 0], {"denoise": "median"}, image_size=20).shape == (4, 20, 20)


def test_augment_is_seeded_per_image_and_zero_params_is_identity() -> None:
    x = _images(8, 24).float() / 255
    full = {"enabled": True, "hflip": True}
    a = checked_augment(x, full, torch.Generator().manual_seed(1))
    b = checked_augment(x, full, torch.Generator().manual_seed(1))
    c = checked_augment(x, full, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    diffs = (a - x).abs().flatten(1).mean(1)
    assert len(set(diffs.tolist())) == 8  # each image gets its own parameters
    zero = {k: 0.0 for k in ("rotation", "scale", "translate", "brightness", "contrast")}
    same = checked_augment(x, {"enabled": True, **zero}, torch.Generator().manual_seed(1))
    assert torch.allclose(same, x)


def test_hflip_only_mirrors() -> None:
    x = torch.rand(16, 1, 8, 8)
    zero = {k: 0.0 for k in ("rotation", "scale", "translate", "brightness", "contrast")}
    out = checked_augment(x, {**zero, "hflip": True}, torch.Generator().manual_seed(0))
    flipped = torch.flip(x, dims=[-1])
    per_image = [
        torch.allclose(o, f, atol=1e-5) or torch.allclose(o, i, atol=1e-5)
        for o, f, i in zip(out, flipped, x, strict=True)
    ]
    assert all(per_image)
    assert any(torch.allclose(o, f, atol=1e-5) for o, f in zip(out, flipped, strict=True))


def _reference_augment(x: torch.Tensor, aug: dict, generator: torch.Generator) -> torch.Tensor:
    """The augmentation's meaning, written plainly (one rand(B) per parameter, in this order;
    affine_grid + bilinear grid_sample with zero padding; contrast about the warped image's mean,
    then brightness; clamp to [0, 1]), on float images on [0, 1]."""
    aug = validate_augmentation(aug)
    b, _, h, w = x.shape

    def uniform(amount: float) -> torch.Tensor:
        return (torch.rand(b, generator=generator, dtype=torch.float64) * 2 - 1) * amount

    angle = uniform(math.radians(aug["rotation"]))
    scale = 1.0 + uniform(aug["scale"])
    tx, ty = uniform(2 * aug["translate"]), uniform(2 * aug["translate"])
    flip = torch.rand(b, generator=generator) < 0.5 if aug["hflip"] else torch.zeros(b, dtype=bool)
    bright, contrast = 1.0 + uniform(aug["brightness"]), 1.0 + uniform(aug["contrast"])
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    sign = torch.where(flip, -1.0, 1.0).double()
    theta = torch.stack(
        [torch.stack([cos * sign, -sin, tx], 1), torch.stack([sin * sign, cos, ty], 1)], 1
    ).float()
    grid = nnf.affine_grid(theta, [b, 1, h, w], align_corners=False)
    x = nnf.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    c, k = contrast.float().view(b, 1, 1, 1), bright.float().view(b, 1, 1, 1)
    return ((x - m) * c * k + m * k).clamp(0.0, 1.0)


@pytest.mark.parametrize(
    "aug",
    [
        {"enabled": True},
        {"enabled": True, "hflip": True, "contrast": 0.0},
        {"enabled": True, "rotation": 0.0, "scale": 0.0, "translate": 0.0},
        {"enabled": True, "rotation": 90.0, "scale": 0.5, "translate": 0.3, "brightness": 0.5},
    ],
)
def test_fused_augment_matches_the_plain_formula(aug: dict) -> None:
    """uint8 in, normalised out (1/255, brightness/contrast and normalisation folded into one
    per-image affine after the warp) == the plain recipe, then normalize: equal up to float
    rounding, within 1% of a grey level (1/255)."""
    x8 = _images(8, 100)
    tol = 0.01 / 255
    for seed in range(2):
        ref = _reference_augment(to_float(x8), aug, torch.Generator().manual_seed(seed))
        fused = checked_augment(x8, aug, torch.Generator().manual_seed(seed), mean=0.45, std=0.2)
        assert fused.dtype == torch.float32 and fused.shape == x8.shape
        assert (fused - normalize(ref, 0.45, 0.2)).abs().max() < tol / 0.2
        plain = checked_augment(
            to_float(x8), aug, torch.Generator().manual_seed(seed)
        )  # [0,1] in, out
        assert (plain - ref).abs().max() < tol
        from_hw = checked_augment(
            x8[:, 0], aug, torch.Generator().manual_seed(seed)
        )  # [B,H,W] uint8
        assert (from_hw - ref).abs().max() < tol


def test_affine_grid_matches_torch_and_input_is_left_alone() -> None:
    theta = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(0))
    grid = _affine_grid(theta, 7, 9)
    ref = nnf.affine_grid(theta, [5, 1, 7, 9], align_corners=False)
    assert grid.shape == ref.shape and torch.allclose(grid, ref, atol=1e-6)
    x = torch.rand(4, 1, 8, 8)
    before = x.clone()
    zero = {k: 0.0 for k in ("rotation", "scale", "translate")}  # no warp: no copy of x either
    checked_augment(x, {**zero, "enabled": True}, torch.Generator().manual_seed(0))
    checked_augment(x, {"enabled": True}, torch.Generator().manual_seed(0))
    assert torch.equal(x, before)


def test_nearest_interpolation_option() -> None:
    x8 = (torch.arange(24) * 10).to(torch.uint8).expand(8, 1, 24, 24)  # smooth: a ramp
    photometric_off = {"brightness": 0.0, "contrast": 0.0}
    aug = {"enabled": True, "interpolation": "nearest", **photometric_off}
    out = checked_augment(x8, aug, torch.Generator().manual_seed(0)) * 255
    assert (out - out.round()).abs().max() < 1e-4  # input grey levels (or 0 padding): no blends
    bilinear = checked_augment(
        x8, {**aug, "interpolation": "bilinear"}, torch.Generator().manual_seed(0)
    )
    assert (out - bilinear * 255).abs().median() < 10  # the same geometry, resampled anew
    assert not torch.equal(out.round(), (bilinear * 255).round())
    with pytest.raises(ValueError, match="data.augmentation.interpolation"):
        validate_augmentation({"interpolation": "bicubic"})


def test_batch_dataset_gathers_rows() -> None:
    images = _images(10, 6)
    rows = torch.tensor([9, 3, 3, 0, 5])
    ds = BatchTensorDataset(images, torch.arange(5), rows)
    got, labels, seed = ds[(7, torch.tensor([4, 1, 0]))]
    assert torch.equal(got, images[torch.tensor([5, 3, 9])]) and got.is_contiguous()
    assert labels.tolist() == [4, 1, 0] and int(seed) == 7


def test_epoch_batch_sampler() -> None:
    s = EpochBatchSampler(10, 4, shuffle=True, seed=3, augment=True)
    e0 = [(seed, idx.tolist()) for seed, idx in s]
    assert len(s) == 3 and [len(i) for _, i in e0] == [4, 4, 2]
    assert sorted(i for _, idx in e0 for i in idx) == list(range(10))
    assert [(seed, idx.tolist()) for seed, idx in s] == e0
    s.set_epoch(1)
    e1 = [(seed, idx.tolist()) for seed, idx in s]
    assert e1 != e0 and len({seed for seed, _ in e0 + e1}) == 6
    plain = EpochBatchSampler(5, 2)
    assert [idx.tolist() for _, idx in plain] == [[0, 1], [2, 3], [4]]
    assert {seed for seed, _ in plain} == {-1}


def test_blur_augmentation_smooths_each_image_by_its_own_amount() -> None:
    x = torch.rand(16, 1, 32, 32)  # white noise: blurring lowers its variance
    zero = {k: 0.0 for k in ("rotation", "scale", "translate", "brightness", "contrast")}
    plain = checked_augment(x, zero, torch.Generator().manual_seed(3))
    blurred = checked_augment(x, {**zero, "blur": 2.0}, torch.Generator().manual_seed(3))
    assert torch.allclose(plain, x)  # blur 0 (the default) changes nothing
    ratio = blurred.flatten(1).var(1) / x.flatten(1).var(1)
    assert float(ratio.max()) <= 1.0 + 1e-6 and float(ratio.min()) < 0.3
    assert len({round(r, 4) for r in ratio.tolist()}) > 8  # per-image sigmas
    again = checked_augment(x, {**zero, "blur": 2.0}, torch.Generator().manual_seed(3))
    assert torch.equal(blurred, again)
    with pytest.raises(ValueError, match="blur"):
        validate_augmentation({"blur": -1.0})


def test_site_augmentation_redelivers_the_chosen_share_of_images() -> None:
    g = torch.Generator().manual_seed(0)
    base = torch.randint(0, 256, (1, 1, 8, 8), generator=g, dtype=torch.uint8)
    x = torch.nn.functional.interpolate(base.float(), size=48, mode="bilinear").to(torch.uint8)
    x = x.repeat(64, 1, 1, 1)  # smooth images: every kind of shift changes them
    original = x.clone()
    zero = {k: 0.0 for k in ("rotation", "scale", "translate", "brightness", "contrast")}
    plain = checked_augment(x, zero, torch.Generator().manual_seed(3))
    shifted = checked_augment(x, {**zero, "site": 1.0}, torch.Generator().manual_seed(3))
    assert torch.equal(x, original)  # the caller's images are never written
    changed = (shifted != plain).flatten(1).any(dim=1)
    assert bool(changed.all())  # site 1: every image re-delivered
    half = checked_augment(x, {**zero, "site": 0.5}, torch.Generator().manual_seed(3))
    share = float((half != plain).flatten(1).any(dim=1).float().mean())
    assert 0.25 < share < 0.75
    again = checked_augment(x, {**zero, "site": 0.5}, torch.Generator().manual_seed(3))
    assert torch.equal(half, again)  # a seed keeps its images
    unit = x.float() / 255
    plain_float = checked_augment(unit, zero, torch.Generator().manual_seed(3))
    as_float = checked_augment(unit, {**zero, "site": 0.5}, torch.Generator().manual_seed(3))
    kept = ~(as_float != plain_float).flatten(1).any(dim=1)
    assert torch.equal(kept, ~(half != plain).flatten(1).any(dim=1))  # the same images chosen
    with pytest.raises(ValueError, match="site"):
        validate_augmentation({"site": 1.5})


def test_plain_torch_resize_and_equalize_match_torchvision() -> None:
    from torchvision.transforms.v2 import functional as tvf

    from xray_lightning.data.pixel_ops import equalize_u8, resize_u8

    g = torch.Generator().manual_seed(0)
    cases = [
        torch.randint(0, 256, (6, 1, 150, 150), generator=g, dtype=torch.uint8),
        torch.randint(40, 90, (3, 1, 64, 64), generator=g, dtype=torch.uint8),  # narrow range
        (torch.rand(4, 1, 96, 96, generator=g) ** 3 * 255).to(torch.uint8),  # skewed
        torch.full((2, 1, 10, 10), 7, dtype=torch.uint8),  # one grey level: unchanged
        torch.tensor([[[[0, 255], [0, 255]]]], dtype=torch.uint8),
    ]
    for x in cases:
        assert torch.equal(equalize_u8(x), tvf.equalize(x))
        for size in (128, 64, 200):
            assert torch.equal(resize_u8(x, size), tvf.resize(x, [size, size], antialias=True))
    assert torch.equal(resize_u8(cases[0][:, 0], 50), tvf.resize(cases[0][:, 0], [50, 50]))
