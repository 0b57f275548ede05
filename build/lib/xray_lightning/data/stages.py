"""Stages (which labels a model learns) and the stratified validation hold-out."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

import torch

from .sampling import derive_seed

# stage -> class names, index = label
STAGES: dict[str, tuple[str, ...]] = {
    "normal_vs_infected": ("normal", "infected"),
    "covid_vs_noncovid": ("non-covid", "covid"),
    "three_class": ("normal", "non-covid", "covid"),
}
SPLITS: tuple[str, ...] = ("train", "val", "test", "showcase")


def check_stage(stage: str) -> str:
    if stage not in STAGES:
        raise ValueError(f"data.stage must be one of {', '.join(STAGES)}; got {stage!r}")
    return stage


def stage_labels(labels3: torch.Tensor, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Map 3-class labels (0 normal, 1 non-covid, 2 covid) to a stage.

    Returns ``(keep, labels)``: a bool mask of the items the stage uses, and their stage labels.
    """
    check_stage(stage)
    if stage == "normal_vs_infected":
        return torch.ones_like(labels3, dtype=torch.bool), (labels3 > 0).long()
    if stage == "covid_vs_noncovid":
        keep = labels3 > 0
        return keep, (labels3[keep] - 1).long()
    return torch.ones_like(labels3, dtype=torch.bool), labels3.long()


def stratified_holdout(
    labels: Sequence[int],
    fraction: float,
    seed: int,
    groups: Sequence[Hashable] | None = None,
) -> torch.Tensor:
    """Bool mask of a stratified hold-out: ``round(fraction * n_c)`` items of each class c.

    Each class with at least two items keeps at least one item on each side when
    ``fraction > 0``. Depends only on (labels, fraction, seed, groups), never on the training seed.
    ``groups`` (e.g. a content hash per item): items sharing a group end on the same side, the
    side most of them were drawn to (ties: train), so a duplicated image is never both trained on
    and validated on; the per-class counts may then move by a few items.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"data.val_fraction must be in [0, 1); got {fraction!r}")
    y = torch.as_tensor(list(labels), dtype=torch.long)
    mask = torch.zeros(len(y), dtype=torch.bool)
    for c in sorted(set(y.tolist())):
        members = torch.nonzero(y == c).flatten()
        n = len(members)
        k = round(fraction * n)
        if fraction > 0 and n >= 2:
            k = min(max(k, 1), n - 1)
        g = torch.Generator().manual_seed(derive_seed(seed, c, 0x0DA7A))
        mask[members[torch.randperm(n, generator=g)[:k]]] = True
    if groups is not None:
        if len(groups) != len(y):
            raise ValueError(f"groups has {len(groups)} items, labels {len(y)}")
        members_of: dict[Hashable, list[int]] = defaultdict(list)
        for i, key in enumerate(groups):
            members_of[key].append(i)
        for rows in members_of.values():
            if len(rows) > 1:
                held = int(mask[rows].sum())
                mask[rows] = 2 * held > len(rows)
    return mask
