"""uint8 resize and histogram equalisation in plain torch, bit-identical to torchvision's.

``predict`` must label a folder in seconds, and importing torchvision costs 1.5-2 s on a 2-core
CPU (it imports ``torch._dynamo`` through ``torchvision.ops``), more than all the decoding. These
two operations are all the inference path needs; ``tests/test_data_transforms.py`` checks them
against ``torchvision.transforms.v2.functional.resize``/``equalize`` pixel for pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as nnf


def resize_u8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear, antialiased resize of uint8 images [..., H, W] to ``size`` x ``size``."""
    shape = images.shape
    flat = images.reshape(-1, 1, *shape[-2:])
    out = nnf.interpolate(
        flat, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return out.reshape(*shape[:-2], size, size)


def equalize_u8(images: torch.Tensor) -> torch.Tensor:
    """Histogram equalisation of each uint8 image [..., H, W] (PIL's ``ImageOps.equalize``
    rule): the cumulative histogram, less the brightest occupied bin, spread over 0-255; an image
    with (almost) one grey level stays as it is."""
    shape = images.shape
    flat = images.reshape(-1, shape[-2] * shape[-1]).long()
    hist = torch.zeros(flat.shape[0], 256, dtype=torch.int64)
    hist.scatter_add_(1, flat, torch.ones_like(flat))
    levels = torch.arange(256).expand_as(hist)
    brightest = torch.where(hist > 0, levels, -1).amax(dim=1, keepdim=True).clamp(min=0)
    step = (flat.shape[1] - hist.gather(1, brightest)) // 255
    below = hist.cumsum(1) - hist  # pixels darker than each level
    lut = ((below + step // 2) // step.clamp(min=1)).clamp(0, 255)
    out = torch.where(step > 0, lut.gather(1, flat), flat).to(torch.uint8)
    return out.reshape(shape)
