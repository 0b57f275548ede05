"""A cascade stage made of K trained classifiers whose probabilities are averaged.

Deep ensembles are the most robust known answer to dataset shift (Ovadia et al. 2019). The
members must be the same stage trained on the same input; ``CascadeModule`` takes an ensemble
wherever it takes one classifier (it reads ``hparams`` and calls ``predict_proba``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from xray_lightning.decision import check_same_input
from xray_lightning.errors import CheckpointError


class ClassifierEnsemble(nn.Module):
    """K classifiers of one stage; ``predict_proba`` is the mean of theirs."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise CheckpointError("an ensemble needs at least one member")
        stages = {member.hparams.get("stage") for member in members}
        if len(stages) > 1:
            raise CheckpointError(f"ensemble members must be one stage; got {sorted(stages)}")
        for member in members[1:]:
            check_same_input(members[0].hparams.get("preprocess"), member.hparams.get("preprocess"))
        self.members = nn.ModuleList(members)

    @property
    def hparams(self) -> Any:
        """The first member's (stage, threshold, preprocess: the same for every member)."""
        return self.members[0].hparams

    @property
    def net(self) -> nn.Module:
        """The first member's network (Grad-CAM explains one network)."""
        return self.members[0].net

    @torch.no_grad()
    def member_proba(self, images: torch.Tensor) -> torch.Tensor:
        """[K, B]: each member's probabilities (``decision.staged_proba`` reads their spread)."""
        return torch.stack([member.predict_proba(images) for member in self.members])

    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        return self.member_proba(images).mean(0)


def stage_of(members: Sequence[nn.Module]) -> nn.Module:
    """One member as it is, several as their ensemble."""
    return members[0] if len(members) == 1 else ClassifierEnsemble(members)
