"""Measure a model's cost: forward FLOPs per image and forward+backward training throughput.

    python -m xray_lightning.models.bench --models cnn cnn_bn resnet18 --batch-size 32

prints, per model and per precision (fp32; bf16 autocast + channels_last), the images/s of
a full training step (forward, backward, no optimiser), on CPU or CUDA.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .cnn import ReportCNN
from .cnn_bn import CNNBN
from .resnet import ResNet18

MODELS: dict[str, Callable[..., nn.Module]] = {
    "cnn": ReportCNN,
    "cnn_bn": CNNBN,
    "resnet18": ResNet18,
}
PRECISIONS = ("fp32", "bf16")


def forward_flops(net: nn.Module, image_size: int = 150, in_channels: int = 1) -> float:
    """Forward-pass FLOPs for one image (multiply-add counted as 2)."""
    x = torch.zeros(1, in_channels, image_size, image_size)
    was_training = net.training
    net.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x)
    net.train(was_training)
    return float(counter.get_total_flops())


def train_throughput(
    net: nn.Module,
    batch_size: int = 32,
    image_size: int = 150,
    in_channels: int = 1,
    precision: str = "fp32",
    channels_last: bool = False,
    steps: int = 5,
    warmup: int = 2,
    device: str = "cpu",
) -> float:
    """Images/s of forward + backward in training mode (median step time over ``steps``)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(device=device, memory_format=memory_format).train()
    x = torch.randn(batch_size, in_channels, image_size, image_size, device=device)
    x = x.contiguous(memory_format=memory_format)
    device_type = torch.device(device).type
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        net.zero_grad(set_to_none=True)
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = net(x)
        out.float().mean().backward()
        if device_type == "cuda":
            torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    times.sort()
    return batch_size / times[len(times) // 2]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=150)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    print(f"device={args.device} threads={torch.get_num_threads()} batch={args.batch_size}")
    print(f"{'model':10} {'params':>8} {'GFLOP/img':>9} {'fp32 img/s':>10} {'bf16+CL img/s':>13}")
    for name in args.models:
        net = MODELS[name](in_channels=1, image_size=args.image_size, num_outputs=1)
        params = sum(p.numel() for p in net.parameters()) / 1e6
        gflop = forward_flops(net, args.image_size) / 1e9
        common = dict(
            batch_size=args.batch_size,
            image_size=args.image_size,
            steps=args.steps,
            warmup=args.warmup,
            device=args.device,
        )
        fp32 = train_throughput(net, precision="fp32", **common)
        bf16 = train_throughput(net, precision="bf16", channels_last=True, **common)
        print(f"{name:10} {params:7.2f}M {gflop:9.3f} {fp32:10.1f} {bf16:13.1f}", flush=True)


if __name__ == "__main__":
    main()
