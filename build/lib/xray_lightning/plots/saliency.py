"""Where the networks look: first-layer feature maps and Grad-CAM (plain torch hooks).

Grad-CAM (Selvaraju et al., 2017): the activations of the last conv layer, weighted by the
spatial mean of the gradient of the class score, summed over channels, ReLU'd and upsampled. The
class score of a binary stage is its class-1 logit (or the class-1 minus class-0 logit for a
two-logit loss), negated when explaining class 0, so the map shows what pushed the decision made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from xray_lightning.plots.io import FigureInputError


def conv_layers(net: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """The network's Conv2d layers, in registration (= forward, for these models) order."""
    layers = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    if not layers:
        raise FigureInputError(f"{type(net).__name__} has no Conv2d layer to visualise")
    return layers


@torch.no_grad()
def feature_maps(
    net: nn.Module, images: torch.Tensor, layers: Sequence[tuple[str, nn.Module]]
) -> dict[str, torch.Tensor]:
    """The outputs [B,C,h,w] of ``layers`` for model input ``images`` (forward hooks)."""
    captured: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(module: nn.Module, args: object, output: torch.Tensor) -> torch.Tensor:
            captured[name] = output.detach().float().cpu().clone()
            return output

        return hook

    handles = [module.register_forward_hook(keep(name)) for name, module in layers]
    try:
        net.eval()(images)
    finally:
        for handle in handles:
            handle.remove()
    return captured


def feature_maps_figure(
    net: nn.Module,
    inputs: torch.Tensor,
    raw: torch.Tensor,
    row_names: Sequence[str],
    num_layers: int = 2,
    num_channels: int = 8,
    title: str = "",
) -> Figure:
    """For each image (one row per image and layer): the image, then the first ``num_channels``
    maps of each of the first ``num_layers`` conv layers (each map scaled to its own range)."""
    layers = conv_layers(net)[:num_layers]
    maps = feature_maps(net, inputs, layers)
    rows = [(i, name) for i in range(len(inputs)) for name, _ in layers]
    ncols = num_channels + 1
    fig = Figure(figsize=(1.35 * ncols, 1.45 * len(rows) + 0.5))
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    for r, (i, name) in enumerate(rows):
        first = name == layers[0][0]
        axes[r, 0].imshow(np.asarray(raw[i]), cmap="gray", vmin=0, vmax=255)
        axes[r, 0].set_title(f"{row_names[i]}" if first else "", fontsize=8)
        axes[r, 0].set_ylabel(name, fontsize=7)
        channels = maps[name][i]
        for c in range(num_channels):
            ax = axes[r, c + 1]
            if c < channels.shape[0]:
                ax.imshow(channels[c].numpy(), cmap="viridis")
                ax.set_title(f"ch {c}", fontsize=6)
            else:
                ax.axis("off")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title or f"First conv layers ({', '.join(n for n, _ in layers)})", fontsize=10)
    fig.tight_layout()
    return fig


def class_score(logits: torch.Tensor) -> torch.Tensor:
    """A binary stage's class-1 score from its logits [B,1] or [B,2]."""
    logits = logits.float()
    return logits[:, 0] if logits.shape[1] == 1 else logits[:, 1] - logits[:, 0]


def grad_cam(
    net: nn.Module,
    images: torch.Tensor,
    explain_class: torch.Tensor,
    layer: nn.Module | None = None,
) -> torch.Tensor:
    """Grad-CAM maps [B,H,W] in [0, 1] of a binary network for ``explain_class`` (0/1 per image).

    ``layer`` defaults to the network's last Conv2d.
    """
    layer = layer if layer is not None else conv_layers(net)[-1][1]
    store: dict[str, torch.Tensor] = {}

    def hook(module: nn.Module, args: object, output: torch.Tensor) -> torch.Tensor:
        store["activation"] = output
        # a clone goes on, so an in-place ReLU after the conv cannot overwrite what we keep
        return output.clone()

    handle = layer.register_forward_hook(hook)
    was_training = net.training
    try:
        net.eval()
        with torch.enable_grad():
            x = images.detach().clone().requires_grad_(True)
            score = class_score(net(x))
            sign = torch.where(explain_class.to(score.device).bool(), 1.0, -1.0)
            activation = store["activation"]
            (gradient,) = torch.autograd.grad((score * sign).sum(), activation)
    finally:
        handle.remove()
        net.train(was_training)
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activation).sum(dim=1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    top = cam.flatten(1).max(dim=1).values.clamp(min=1e-12).view(-1, 1, 1)
    return (cam / top).cpu()


def gradcam_figure(
    raw: torch.Tensor,
    cams: Mapping[str, torch.Tensor],
    captions: Sequence[str],
    mistakes: Sequence[bool],
    title: str = "",
) -> Figure:
    """One row per image: the image, then one Grad-CAM overlay per entry of ``cams``."""
    ncols = 1 + len(cams)
    n = len(raw)
    fig = Figure(figsize=(2.6 * ncols, 2.7 * n + 0.5))
    axes = fig.subplots(n, ncols, squeeze=False)
    for i in range(n):
        color = "tab:red" if mistakes[i] else "tab:green"
        axes[i, 0].imshow(np.asarray(raw[i]), cmap="gray", vmin=0, vmax=255)
        axes[i, 0].set_title(captions[i], fontsize=7, color=color)
        for c, (name, maps) in enumerate(cams.items(), start=1):
            axes[i, c].imshow(np.asarray(raw[i]), cmap="gray", vmin=0, vmax=255)
            axes[i, c].imshow(maps[i].numpy(), cmap="jet", alpha=0.4, vmin=0, vmax=1)
            axes[i, c].set_title(name, fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
