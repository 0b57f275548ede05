"""torchvision's ResNet-18 with a 1-channel stem, randomly initialised."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._checks import ModelConfigError, check_image_size, check_input_channels, check_positive_int

MIN_IMAGE_SIZE = 32  # ResNet-18 downsamples by 32 before global pooling


class ResNet18(nn.Module):
    """torchvision ``resnet18(weights=None)`` with ``in_channels`` input channels.

    The stem conv is replaced to take ``in_channels`` and re-initialised like torchvision's
    own convs (Kaiming normal, fan_out). ``image_size`` is only checked: global average
    pooling accepts any size of at least 32.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int | Sequence[int] = 150,
        num_outputs: int = 1,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        in_channels = check_positive_int(owner, "in_channels", in_channels)
        num_outputs = check_positive_int(owner, "num_outputs", num_outputs)
        height, width = check_image_size(owner, image_size)
        if min(height, width) < MIN_IMAGE_SIZE:
            raise ModelConfigError(
                f"{owner}: image_size={height}x{width} is too small: ResNet-18 downsamples by "
                f"32, each side must be at least {MIN_IMAGE_SIZE}"
            )
        from torchvision.models import resnet18  # imported here: torchvision takes 1-2 s to load

        net = resnet18(weights=None, num_classes=num_outputs)
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.net = net
        self.in_channels = in_channels
        self.image_size = (height, width)
        self.num_outputs = num_outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Float images [B, C, H, W] -> logits [B, num_outputs]."""
        check_input_channels(self, x, self.in_channels)
        return self.net(x)
