"""Where the train/test shift of stage 1 lives: image statistics and BatchNorm statistics.

    python experiments/diagnostics/shift.py [--root DIR] [--stage1 CKPT]

Prints (1) per split and class: mean intensity, per-image contrast (std) and sharpness (variance
of the 3x3 Laplacian, x1000) of the raw images; (2) the shipped stage 1 on val and test, as
shipped and after re-estimating its BatchNorm running statistics on the *unlabelled* test images
(AdaBN). (2) is a diagnostic only: it adapts to the test inputs, so its accuracy is not a result
any model of this project claims; it tells how much of the error is a shift in the statistics of
the network's features rather than in what the images show.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch
from torch import nn

from xray_lightning.data import XrayDataModule
from xray_lightning.modules import load_classifier

LAPLACE = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])[None, None]


def image_statistics(root: Path) -> str:
    dm = XrayDataModule(root=root, stage="three_class", preprocessing={"normalize": False})
    dm.setup()
    data = dm.data
    lines = [
        "| split | class | images | mean | std per image | sharpness x1000 |",
        "|---|---|---|---|---|---|",
    ]
    for split in ("train", "val", "test"):
        rows, labels = data.rows[split], data.labels[split]
        for label, name in enumerate(dm.class_names):
            x = (
                data.images[rows[labels == label]]
                .float()
                .div(255)
                .reshape(-1, 1, *data.images.shape[-2:])
            )
            sharp = nn.functional.conv2d(x, LAPLACE).flatten(1).var(1).mean() * 1000
            std = x.flatten(1).std(1).mean()
            lines.append(
                f"| {split} | {name} | {len(x)} | {x.mean():.3f} | {std:.3f} | {sharp:.2f} |"
            )
    return "\n".join(lines)


def stage1_scores(model: nn.Module, dm: XrayDataModule, split: str) -> tuple[float, float, float]:
    """(accuracy, infected recall, specificity) at threshold 0.5."""
    probs, labels = [], []
    with torch.no_grad():
        for batch in dm.split_dataloader(split):
            images, y = dm.transform_batch(batch, train=False)
            probs.append(model.predict_proba(images))
            labels.append(y)
    p, y = torch.cat(probs), torch.cat(labels).bool()
    called = p >= 0.5
    return (
        (called == y).float().mean().item(),
        called[y].float().mean().item(),
        (~called[~y]).float().mean().item(),
    )


def adapt_batchnorm(model: nn.Module, dm: XrayDataModule, split: str) -> nn.Module:
    """A copy whose BatchNorm running statistics are the plain average over ``split``'s images."""
    adapted = copy.deepcopy(model)
    for module in adapted.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over all batches
    adapted.train()
    with torch.no_grad():
        for batch in dm.split_dataloader(split):
            adapted(dm.transform_batch(batch, train=False)[0])
    return adapted.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("data/dataset"))
    parser.add_argument("--stage1", type=Path, default=Path("experiments/best/stage1.ckpt"))
    args = parser.parse_args()
    print(image_statistics(args.root))
    model = load_classifier(args.stage1, expected_stage="normal_vs_infected").eval()
    spec = model.hparams["preprocess"]
    dm = XrayDataModule(
        root=args.root, stage="normal_vs_infected", preprocessing=spec["preprocessing"]
    )
    dm.setup()
    adapted = adapt_batchnorm(model, dm, "test")
    print("\n| stage 1 | split | accuracy | infected recall | specificity |\n|---|---|---|---|---|")
    for name, net in (
        ("as shipped", model),
        ("BN statistics re-estimated on unlabelled test images", adapted),
    ):
        for split in ("val", "test"):
            acc, recall, specificity = stage1_scores(net, dm, split)
            print(f"| {name} | {split} | {acc:.3f} | {recall:.3f} | {specificity:.3f} |")


if __name__ == "__main__":
    main()
