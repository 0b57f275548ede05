"""A cascade stage made of K trained members whose probabilities are averaged (a deep ensemble).

Deep ensembles are the most robust known answer to dataset shift (Ovadia et al. 2019). One class
serves both ways a stage is rebuilt: ``CascadeModule`` (members are ``BinaryClassifier``
LightningModules) and the plain-PyTorch ``labeller`` (members are ``StageNet``). It needs only
``predict_proba`` and ``preprocess`` of a member and no Lightning, so ``predict`` stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from xray_lightning.decision import check_same_input
from xray_lightning.errors import CheckpointError


def member_stage(member: nn.Module) -> str | None:
    """The stage a member was trained for: a LightningModule's ``hparams.stage``, a StageNet's
    ``stage``."""
    hparams = getattr(member, "hparams", None)
    return hparams.get("stage") if hparams is not None else getattr(member, "stage", None)


class StageEnsemble(nn.Module):
    """K members of one stage; ``predict_proba`` is the mean of theirs.

    Everything else (``net`` for Grad-CAM, ``hparams``, ``preprocess``, ``threshold``, ...) is
    the first member's: the members share stage and input, and Grad-CAM explains one network.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise CheckpointError("an ensemble needs at least one member checkpoint")
        stages = {member_stage(member) for member in members}
        if len(stages) > 1:
            names = sorted(map(str, stages))
            raise CheckpointError(f"ensemble members must be one stage; got {names}")
        for member in members[1:]:
            check_same_input(members[0].preprocess, member.preprocess)
        self.members = nn.ModuleList(members)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)  # parameters, buffers, submodules (``members``)
        except AttributeError:
            members = self.__dict__.get("_modules", {}).get("members")
            if name.startswith("__") or members is None:  # half-built (unpickling): no member
                raise
            return getattr(members[0], name)

    @torch.no_grad()
    def member_proba(self, images: torch.Tensor) -> torch.Tensor:
        """[K, B]: each member's probabilities (``decision.staged_proba`` reads their spread)."""
        return torch.stack([member.predict_proba(images) for member in self.members])

    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        return self.member_proba(images).mean(0)

    proba = predict_proba  # the name StageNet also answers to


def stage_of(members: Sequence[nn.Module]) -> nn.Module:
    """One member as it is, several as their ensemble."""
    return members[0] if len(members) == 1 else StageEnsemble(members)
