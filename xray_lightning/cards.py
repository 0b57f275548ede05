"""Per-image report cards and Grad-CAM heatmaps for ``predict --cards DIR / --heatmaps DIR``.

A card is one PNG: the image (resized to the model input), the Grad-CAM of each stage that took
part in the decision (stage 1 always, stage 2 for images called infected), the label and
probabilities, the model it came from and "research use, not a medical device". A heatmap is
the overlay of the deciding stage alone (stage 2 for images called infected, else stage 1), at
the model's input size. Everything is made in memory (``serve`` never writes to disk).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from xray_lightning.paths import package_version

DISCLAIMER = "research use, not a medical device"


def model_id(stage1: Path | list[Path], stage2: Path | list[Path]) -> str:
    """A short name of the model: its folder and a digest of its checkpoints (every member's,
    for an ensemble; then ``xK`` says how many members a stage has)."""
    firsts = stage1 if isinstance(stage1, list) else [stage1]
    seconds = stage2 if isinstance(stage2, list) else [stage2]
    digest = hashlib.sha256()
    for path in (*firsts, *seconds):
        digest.update(Path(path).read_bytes())
    size = max(len(firsts), len(seconds))
    members = f" x{size}" if size > 1 else ""
    return f"{Path(firsts[0]).resolve().parent.name}@{digest.hexdigest()[:10]}{members}"


def output_name(path: Path) -> str:
    """A flat, unique-enough file name for ``path``'s card (folders joined by "__")."""
    parts = [p for p in Path(path).parts if p not in ("/", "..", ".")]
    return "__".join(parts[-3:]) + ".png"


def overlay(raw: np.ndarray, cam: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """RGB uint8: the grayscale image with the map in the jet colour map on top."""
    from matplotlib import colormaps

    heat = colormaps["jet"](np.clip(cam, 0.0, 1.0))[..., :3]
    gray = np.repeat(raw[..., None].astype(np.float64) / 255.0, 3, axis=2)
    return np.clip(np.rint(((1 - alpha) * gray + alpha * heat) * 255), 0, 255).astype(np.uint8)


def png_bytes(rgb_or_gray: np.ndarray) -> bytes:
    """A PNG file's bytes for a uint8 [H, W] or [H, W, 3] array (kept in memory)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb_or_gray).save(buffer, format="PNG")
    return buffer.getvalue()


def explain(
    labeller: object, inputs: torch.Tensor, p_infected: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM maps [B, H, W] of stage 1 (explaining its normal/infected call) and of stage 2
    (explaining covid/non-covid; only for the images called infected, zero for the others, which
    no card or heatmap shows), computed outside inference mode."""
    from xray_lightning.plots.saliency import grad_cam

    with torch.inference_mode(False):
        x = inputs.clone()
        called = (p_infected >= labeller.t1).clone()
        cam1 = grad_cam(labeller.stage1.net, x, called.long())
        cam2 = torch.zeros_like(cam1)
        if bool(called.any()):
            covid = (labels[called] == 2).clone().long()
            cam2[called] = grad_cam(labeller.stage2.net, x[called], covid)
        return cam1, cam2


def card_png(image: np.ndarray, maps: dict[str, np.ndarray], text: list[str]) -> bytes:
    """The report card of one image as PNG bytes."""
    import io

    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.0 * (1 + len(maps)), 4.0))
    axes = fig.subplots(1, 1 + len(maps), squeeze=False)[0]
    axes[0].imshow(image, cmap="gray", vmin=0, vmax=255)
    axes[0].set_title("image (resized to the model input)", fontsize=8)
    for ax, (name, cam) in zip(axes[1:], maps.items(), strict=True):
        ax.imshow(overlay(image, cam))
        ax.set_title(name, fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.text(0.02, 0.02, "\n".join(text), fontsize=8, va="bottom", family="monospace")
    fig.subplots_adjust(bottom=0.3, top=0.9, left=0.02, right=0.98, wspace=0.05)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def describe(
    name: str,
    label: str,
    p_infected: float,
    p_covid: float | None,
    model: str,
    refer: bool | None = None,
) -> list[str]:
    """The card's text lines."""
    covid_text = "-" if p_covid is None else f"{p_covid:.3f}"
    lines = [
        f"{name}: {label}"
        + ("   REFER: the model is unsure, a person should look" if refer else ""),
        f"P(infected) {p_infected:.3f}   P(covid | infected) {covid_text}",
        f"model {model} · xray-lightning {package_version()}",
        DISCLAIMER,
    ]
    return lines


def image_cards(
    labeller: object,
    names: Sequence[str],
    raw: torch.Tensor,
    inputs: torch.Tensor,
    p_infected: torch.Tensor,
    p_covid: torch.Tensor,
    labels: torch.Tensor,
    model: str,
    cards: bool = True,
    shown: tuple[torch.Tensor, torch.Tensor] | None = None,
    refer: torch.Tensor | None = None,
) -> list[dict[str, bytes]]:
    """Per image: ``heatmap`` (the deciding stage's overlay) and ``card`` PNG bytes. ``shown``:
    the probabilities to print (the calibrated ones), ``refer``: the refer flags."""
    shown = shown or (p_infected, p_covid)
    cam1, cam2 = explain(labeller, inputs, p_infected, labels)
    out = []
    for i, name in enumerate(names):
        image = raw[i].numpy()
        infected = bool(p_infected[i] >= labeller.t1)
        made = {"heatmap": png_bytes(overlay(image, (cam2[i] if infected else cam1[i]).numpy()))}
        if cards:
            maps = {"stage 1 Grad-CAM (normal vs infected)": cam1[i].numpy()}
            if infected:
                maps["stage 2 Grad-CAM (covid vs non-covid)"] = cam2[i].numpy()
            label = labeller.class_names[int(labels[i])]
            covid = float(shown[1][i]) if infected else None
            flag = None if refer is None else bool(refer[i])
            text = describe(name, label, float(shown[0][i]), covid, model, flag)
            made["card"] = card_png(image, maps, text)
        out.append(made)
    return out


class CardWriter:
    """Writes cards and/or heatmaps for each labelled batch (``predict_files(on_batch=...)``)."""

    def __init__(
        self,
        labeller: object,
        model: str,
        cards: Path | None = None,
        heatmaps: Path | None = None,
    ) -> None:
        self.labeller = labeller
        self.model = model
        self.cards, self.heatmaps = cards, heatmaps
        for folder in (cards, heatmaps):
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)

    def __call__(
        self,
        paths: Sequence[Path],
        raw: torch.Tensor,
        inputs: torch.Tensor,
        p_infected: torch.Tensor,
        p_covid: torch.Tensor,
        labels: torch.Tensor,
        shown: tuple[torch.Tensor, torch.Tensor] | None = None,
        refer: torch.Tensor | None = None,
    ) -> None:
        names = [Path(path).name for path in paths]
        made = image_cards(
            self.labeller,
            names,
            raw,
            inputs,
            p_infected,
            p_covid,
            labels,
            self.model,
            cards=self.cards is not None,
            shown=shown,
            refer=refer,
        )
        for path, pngs in zip(paths, made, strict=True):
            if self.heatmaps is not None:
                (self.heatmaps / output_name(path)).write_bytes(pngs["heatmap"])
            if self.cards is not None:
                (self.cards / output_name(path)).write_bytes(pngs["card"])
