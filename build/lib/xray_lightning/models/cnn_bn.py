"""A modern small CNN: conv-BatchNorm-ReLU stages and global average pooling."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._checks import (
    ModelConfigError,
    check_dropout,
    check_image_size,
    check_input_channels,
    check_int_sequence,
    check_positive_int,
)

NORMS = ("batch", "group")
GROUPS = 8


def _norm(kind: str, channels: int) -> nn.Module:
    """BatchNorm (batch statistics) or GroupNorm (per-image statistics, no running stats)."""
    if kind == "group":
        return nn.GroupNorm(math.gcd(GROUPS, channels), channels)
    return nn.BatchNorm2d(channels)


def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1, norm: str = "batch") -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        _norm(norm, c_out),
        nn.ReLU(inplace=True),
    )


class CNNBN(nn.Module):
    """VGG-style network with BatchNorm and a global-average-pooled head.

    A stride-``stem_stride`` 3x3 stem, then one stage per entry of ``channels``: a 2x2 max-pool
    (except before the first stage) and ``blocks_per_stage`` conv3x3-BN-ReLU blocks. The stride-2
    stem keeps the cost near 0.6 GFLOP per 150x150 image, which a 2-core CPU can train.
    Global average pooling makes the head independent of the input size. ``norm="group"``
    swaps BatchNorm for GroupNorm (8 groups): each image is normalised by its own feature
    statistics, none learnt from the training distribution's batches.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int | Sequence[int] = 150,
        num_outputs: int = 1,
        channels: Sequence[int] = (32, 64, 128, 256),
        blocks_per_stage: int = 2,
        stem_stride: int = 2,
        dropout: float = 0.2,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        in_channels = check_positive_int(owner, "in_channels", in_channels)
        num_outputs = check_positive_int(owner, "num_outputs", num_outputs)
        widths = check_int_sequence(owner, "channels", channels)
        blocks_per_stage = check_positive_int(owner, "blocks_per_stage", blocks_per_stage)
        stem_stride = check_positive_int(owner, "stem_stride", stem_stride)
        dropout = check_dropout(owner, dropout)
        height, width = check_image_size(owner, image_size)
        if norm not in NORMS:
            raise ModelConfigError(f"{owner}: norm must be one of {', '.join(NORMS)}; got {norm!r}")

        side = min(height, width)
        side = (side - 1) // stem_stride + 1  # 3x3 conv, padding 1
        side = side // 2 ** (len(widths) - 1)
        if side < 1:
            need = stem_stride * 2 ** (len(widths) - 1)
            raise ModelConfigError(
                f"{owner}: image_size={height}x{width} is too small for stem_stride={stem_stride} "
                f"and {len(widths) - 1} 2x2 poolings: each side must be at least {need}"
            )

        layers: list[nn.Module] = [_conv_bn_relu(in_channels, widths[0], stem_stride, norm)]
        prev = widths[0]
        for i, ch in enumerate(widths):
            if i > 0:
                layers.append(nn.MaxPool2d(2))
            for _ in range(blocks_per_stage):
                layers.append(_conv_bn_relu(prev, ch, norm=norm))
                prev = ch
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(prev, num_outputs),
        )
        self.in_channels = in_channels
        self.image_size = (height, width)
        self.num_outputs = num_outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Float images [B, C, H, W] -> logits [B, num_outputs]."""
        check_input_channels(self, x, self.in_channels)
        return self.head(self.features(x))
