"""The report's CNN: conv(3x3) + ReLU + 2x2 max-pool blocks, then fully connected layers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._checks import (
    ModelConfigError,
    check_dropout,
    check_image_size,
    check_int_sequence,
    check_positive_int,
)


def _after_block(size: int, kernel_size: int, padding: int) -> int:
    """Side of the feature map after one conv (stride 1) and a 2x2/stride-2 max-pool."""
    return (size + 2 * padding - kernel_size + 1) // 2


def _min_input(num_blocks: int, kernel_size: int, padding: int) -> int:
    """Smallest input side that leaves a feature map of at least 1x1 after every block."""
    size = 1
    while True:
        side = size
        for _ in range(num_blocks):
            side = _after_block(side, kernel_size, padding)
            if side < 1:
                break
        else:
            return size
        size += 1


class ReportCNN(nn.Module):
    """The report's network, one output logit per ``num_outputs``.

    ``conv_channels`` gives one conv block each (conv k x k, ReLU, 2x2 max-pool stride 2);
    ``fc_widths`` gives the hidden fully connected layers, each followed by ReLU and dropout;
    a last linear layer maps to ``num_outputs`` logits. ``padding=0`` is Keras' "valid"
    convolution, so 150x150 inputs give 17x17 maps after three blocks.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int | Sequence[int] = 150,
        num_outputs: int = 1,
        conv_channels: Sequence[int] = (32, 64, 128),
        fc_widths: Sequence[int] = (100, 60),
        dropout: float = 0.25,
        kernel_size: int = 3,
        padding: int = 0,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        in_channels = check_positive_int(owner, "in_channels", in_channels)
        num_outputs = check_positive_int(owner, "num_outputs", num_outputs)
        channels = check_int_sequence(owner, "conv_channels", conv_channels)
        widths = check_int_sequence(owner, "fc_widths", fc_widths, allow_empty=True)
        dropout = check_dropout(owner, dropout)
        kernel_size = check_positive_int(owner, "kernel_size", kernel_size)
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ModelConfigError(f"{owner}: padding must be an integer >= 0, got {padding!r}")
        height, width = check_image_size(owner, image_size)

        out_h, out_w = height, width
        for _ in channels:
            out_h = _after_block(out_h, kernel_size, padding)
            out_w = _after_block(out_w, kernel_size, padding)
        if min(out_h, out_w) < 1:
            need = _min_input(len(channels), kernel_size, padding)
            raise ModelConfigError(
                f"{owner}: image_size={height}x{width} is too small for {len(channels)} conv "
                f"blocks (kernel_size={kernel_size}, padding={padding}, 2x2 pooling each): "
                f"each side must be at least {need}"
            )

        layers: list[nn.Module] = []
        prev = in_channels
        for ch in channels:
            layers += [
                nn.Conv2d(prev, ch, kernel_size, padding=padding),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=2, stride=2),
            ]
            prev = ch
        self.features = nn.Sequential(*layers)

        head: list[nn.Module] = [nn.Flatten()]
        prev = channels[-1] * out_h * out_w
        for w in widths:
            head += [nn.Linear(prev, w), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            prev = w
        head.append(nn.Linear(prev, num_outputs))
        self.classifier = nn.Sequential(*head)

        self.in_channels = in_channels
        self.image_size = (height, width)
        self.num_outputs = num_outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Float images [B, C, H, W] -> logits [B, num_outputs]."""
        if x.ndim != 4 or x.shape[1] != self.in_channels or tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(
                f"{type(self).__name__} was built for input [B, {self.in_channels}, "
                f"{self.image_size[0]}, {self.image_size[1]}], got {list(x.shape)}"
            )
        return self.classifier(self.features(x))
