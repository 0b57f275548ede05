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
    with (almost) one grey level stays as it is. Each image's 256-entry table is built first and
    applied with one gather, so the per-pixel work is a histogram and a lookup."""
    shape = images.shape
    pixels = shape[-2] * shape[-1]
    flat = images.reshape(-1, pixels).long()
    hist = torch.zeros(flat.shape[0], 256, dtype=torch.int32)
    hist.scatter_add_(1, flat, hist.new_ones(1).expand_as(flat))
    cumulative = hist.cumsum(1)
    brightest = cumulative.argmax(1, keepdim=True)  # the first level reaching the total
    step = (pixels - hist.gather(1, brightest)) // 255
    below = cumulative - hist  # pixels darker than each level
    lut = ((below + step // 2) // step.clamp(min=1)).clamp(0, 255)
    lut = torch.where(step > 0, lut, torch.arange(256, dtype=lut.dtype)).to(torch.uint8)
    return lut.gather(1, flat).reshape(shape)
