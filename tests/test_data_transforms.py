"""Batched transforms: deterministic preprocessing, augmentation, the seeded batch sampler."""

from __future__ import annotations

import torch

from xray_lightning.data.sampling import EpochBatchSampler
from xray_lightning.data.transforms import augment, image_stats, median3x3, preprocess_u8


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
    a = augment(x, full, torch.Generator().manual_seed(1))
    b = augment(x, full, torch.Generator().manual_seed(1))
    c = augment(x, full, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    diffs = (a - x).abs().flatten(1).mean(1)
    assert len(set(diffs.tolist())) == 8  # each image gets its own parameters
    zero = {k: 0.0 for k in ("rotation", "scale", "translate", "brightness", "contrast")}
    same = augment(x, {"enabled": True, **zero}, torch.Generator().manual_seed(1))
    assert torch.allclose(same, x)


def test_hflip_only_mirrors() -> None:
    x = torch.rand(16, 1, 8, 8)
    zero = {k: 0.0 for k in ("rotation", "scale", "translate", "brightness", "contrast")}
    out = augment(x, {**zero, "hflip": True}, torch.Generator().manual_seed(0))
    flipped = torch.flip(x, dims=[-1])
    per_image = [
        torch.allclose(o, f, atol=1e-5) or torch.allclose(o, i, atol=1e-5)
        for o, f, i in zip(out, flipped, x, strict=True)
    ]
    assert all(per_image)
    assert any(torch.allclose(o, f, atol=1e-5) for o, f in zip(out, flipped, strict=True))


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
