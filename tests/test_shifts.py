"""Synthetic site shifts and the shifted-val measurement: each shift does what its name says,
keeps shape and dtype, and repeats itself; "none" reproduces evaluate's own val numbers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as nnf
from test_plots import tiny_cascade

from xray_lightning import evaluate, shifts

LAPLACE = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)


def sharpness(images: torch.Tensor) -> float:
    return float(nnf.conv2d(images.reshape(-1, 1, *images.shape[-2:]).float(), LAPLACE).var())


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """Smooth structure plus fine texture, uint8 [4, 1, 64, 64]."""
    generator = torch.Generator().manual_seed(0)
    coarse = nnf.interpolate(torch.rand(4, 1, 8, 8, generator=generator), size=64, mode="bilinear")
    fine = torch.rand(4, 1, 64, 64, generator=generator)
    return (160 * coarse + 60 * fine + 10).round().clamp(0, 255).to(torch.uint8)


@pytest.mark.parametrize("name", sorted(shifts.SITE_SHIFTS))
def test_every_shift_keeps_shape_dtype_and_repeats(images: torch.Tensor, name: str) -> None:
    shift = shifts.SITE_SHIFTS[name]
    out = shift(images)
    assert out.shape == images.shape and out.dtype == torch.uint8
    assert torch.equal(out, shift(images))  # deterministic
    assert not torch.equal(out, images)  # and it does change the image
    assert torch.equal(shift(images[:, 0]), out[:, 0])  # [B, H, W] works as [B, 1, H, W]


def test_blur_softens_sharpen_crisps_and_gamma_is_monotone(images: torch.Tensor) -> None:
    base = sharpness(images)
    assert sharpness(shifts.blur(1.0)(images)) < 0.5 * base
    assert sharpness(shifts.sharpen(1.0)(images)) > 1.5 * base
    assert sharpness(shifts.downup(0.5)(images)) < base
    ramp = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    darker = shifts.gamma(1.4)(ramp).flatten()
    assert torch.all(darker[1:] >= darker[:-1]) and int(darker[128]) < 128


def test_jpeg_and_noise_stay_close_to_the_image(images: torch.Tensor) -> None:
    for shift in (shifts.jpeg(25), shifts.noise(6.0)):
        error = (shift(images).float() - images.float()).abs().mean()
        assert 0.5 < float(error) < 15.0


def test_shifts_refuse_float_images() -> None:
    with pytest.raises(ValueError, match="uint8"):
        shifts.blur(1.0)(torch.zeros(1, 8, 8))


def test_unshifted_val_reproduces_evaluate(tmp_path_factory: pytest.TempPathFactory) -> None:
    run_dir, root = tiny_cascade(tmp_path_factory)
    args = ["--run", str(run_dir), "--data-root", str(root), "--shifts"]
    result = evaluate.evaluate(evaluate.build_parser().parse_args(args))
    shifted = result["shifted_val"]
    assert set(shifted) == {"none", "mean_shifted", *shifts.SITE_SHIFTS}
    for key in ("acc", "stage1/acc", "stage2/acc"):
        assert shifted["none"][key] == pytest.approx(result["metrics"][f"val/{key}"], abs=1e-6)
    assert "val under synthetic site shifts" in evaluate.report_text(result)
