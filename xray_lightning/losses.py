"""Classification losses behind one signature: ``loss(logits, targets) -> scalar``.

Every loss takes class-index targets (int64, [B], values 0..C-1) and logits of shape
[B, num_logits]; ``num_logits`` is 1 for binary BCE and hinge, 2 for binary cross-entropy, and
``num_classes`` for every loss in the multiclass case. ``probabilities(logits)`` gives what
the metrics need: [B] (probability of class 1) when binary, [B, C] rows summing to 1 otherwise.

``class_weights`` (one per class) weight each sample by the weight of its class and the batch
loss is the weighted mean ``sum(w_i * l_i) / sum(w_i)``, the convention of
``torch.nn.functional.cross_entropy(weight=...)``, used by every loss here so that a weighted
loss stays on the scale of the unweighted one. Losses are computed in float32 even under
bf16/fp16 autocast.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from xray_lightning.settings import check, number, positive


class LossConfigError(ValueError):
    """A loss parameter (num_classes, class_weights, pos_weight, margin) is invalid."""


class LossInputError(ValueError):
    """Logits or targets passed to a loss have the wrong shape, dtype or values."""


def _positive_number(owner: str, name: str, value: object) -> float:
    return check(positive(), value, f"{owner}: {name}", LossConfigError)


def _smoothing(owner: str, value: object) -> float:
    return check(number(0.0, 0.5), value, f"{owner}: label_smoothing", LossConfigError)


def smoothed(one_hot: torch.Tensor, amount: float) -> torch.Tensor:
    """Targets pulled towards 1/2 (binary) or 1/C: ``(1 - amount) t + amount / C``.

    Against overconfidence under shift: a network rewarded for a 0.95 instead of a 1.0 has
    less reason to push its logits far along whatever shortcut separates the training classes.
    """
    if not amount:
        return one_hot
    classes = 2 if one_hot.ndim == 1 else one_hot.shape[1]
    return one_hot * (1.0 - amount) + amount / classes


def _class_weights(owner: str, num_classes: int, values: object) -> torch.Tensor:
    """Check one finite weight >= 0 per class, not all zero; return them as a tensor."""
    if hasattr(values, "tolist") and not isinstance(values, Sequence):  # tensor or ndarray
        values = values.tolist()
    ok = isinstance(values, Sequence) and not isinstance(values, str) and len(values) == num_classes
    if ok:
        ok = all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
            for v in values
        )
        ok = ok and sum(values) > 0
    if not ok:
        raise LossConfigError(
            f"{owner}: class_weights must be {num_classes} finite numbers >= 0, not all zero "
            f"(one per class), got {values!r}"
        )
    return torch.tensor([float(v) for v in values], dtype=torch.float32)


class ClassificationLoss(nn.Module):
    """Shared checks, class weighting and reduction; subclasses give per-sample losses."""

    binary_logits: int = 1  # logits per sample in the binary case

    def __init__(self, num_classes: int = 2, class_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        owner = type(self).__name__
        is_int = isinstance(num_classes, numbers.Integral) and not isinstance(num_classes, bool)
        if not is_int or num_classes < 2:
            raise LossConfigError(
                f"{owner}: num_classes must be an integer >= 2, got {num_classes!r}"
            )
        self.num_classes = int(num_classes)
        weights = None
        if class_weights is not None:
            weights = _class_weights(owner, num_classes, class_weights)
        # Not persistent: a checkpoint must load whatever weighting the loss is rebuilt with.
        self.register_buffer("class_weights", weights, persistent=False)

    @property
    def is_binary(self) -> bool:
        return self.num_classes == 2

    @property
    def num_logits(self) -> int:
        """Logits per sample the network must output for this loss."""
        return self.binary_logits if self.is_binary else self.num_classes

    def _check(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        owner = type(self).__name__
        if logits.ndim != 2 or logits.shape[1] != self.num_logits or not logits.is_floating_point():
            raise LossInputError(
                f"{owner}: logits must be a float tensor [B, {self.num_logits}] "
                f"(num_classes={self.num_classes}), got {logits.dtype} {list(logits.shape)}"
            )
        if targets.ndim != 1 or targets.shape[0] != logits.shape[0]:
            raise LossInputError(
                f"{owner}: targets must be class indices [B] with B={logits.shape[0]}, "
                f"got {list(targets.shape)}"
            )
        if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
            raise LossInputError(
                f"{owner}: targets must be integer class indices (int64), got {targets.dtype}"
            )
        if targets.numel() and (targets.min() < 0 or targets.max() >= self.num_classes):
            raise LossInputError(
                f"{owner}: targets must lie in 0..{self.num_classes - 1}, got values in "
                f"{int(targets.min())}..{int(targets.max())}"
            )

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Unreduced loss [B] for float32 logits and int64 targets."""
        raise NotImplementedError

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Binary: [B] probability of class 1; multiclass: [B, C] rows summing to 1."""
        raise NotImplementedError

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Logits [B, num_logits], class-index targets [B] -> scalar (weighted) mean loss."""
        self._check(logits, targets)
        targets = targets.long()
        losses = self.per_sample(logits.float(), targets)
        if self.class_weights is None:
            return losses.mean()
        w = self.class_weights[targets]
        # A batch holding only zero-weight classes gives 0, not 0/0.
        return (losses * w).sum() / w.sum().clamp_min(torch.finfo(w.dtype).tiny)

    def extra_repr(self) -> str:
        weights = None if self.class_weights is None else self.class_weights.tolist()
        return f"num_classes={self.num_classes}, class_weights={weights}"


class BCELoss(ClassificationLoss):
    """Binary cross-entropy with logits; multiclass: one-vs-rest on one-hot targets.

    ``pos_weight`` multiplies the positive term (class 1 when binary, every class's own
    column when multiclass), as in ``torch.nn.BCEWithLogitsLoss``. ``label_smoothing`` (in
    [0, 0.5)) trains towards ``smoothed`` targets. Multiclass probabilities are the per-class
    sigmoids normalised to sum to 1.
    """

    def __init__(
        self,
        num_classes: int = 2,
        class_weights: Sequence[float] | None = None,
        pos_weight: float | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(num_classes, class_weights)
        self.label_smoothing = _smoothing(type(self).__name__, label_smoothing)
        if pos_weight is not None:
            pos_weight = _positive_number(type(self).__name__, "pos_weight", pos_weight)
            if class_weights is not None:
                raise LossConfigError(
                    f"{type(self).__name__}: give class_weights or pos_weight, not both "
                    f"(got class_weights={class_weights!r}, pos_weight={pos_weight!r})"
                )
            self.register_buffer("pos_weight", torch.tensor(pos_weight), persistent=False)
        else:
            self.pos_weight = None

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.is_binary:
            return F.binary_cross_entropy_with_logits(
                logits[:, 0],
                smoothed(targets.float(), self.label_smoothing),
                pos_weight=self.pos_weight,
                reduction="none",
            )
        one_hot = smoothed(F.one_hot(targets, self.num_classes).float(), self.label_smoothing)
        return F.binary_cross_entropy_with_logits(
            logits, one_hot, pos_weight=self.pos_weight, reduction="none"
        ).mean(dim=1)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        if self.is_binary:
            return torch.sigmoid(logits.float()[:, 0])
        p = torch.sigmoid(logits.float())
        return p / p.sum(dim=1, keepdim=True).clamp_min(torch.finfo(p.dtype).tiny)


class CrossEntropyLoss(ClassificationLoss):
    """Softmax cross-entropy; binary uses two logits (``num_logits == 2``). ``label_smoothing``
    (in [0, 0.5)) is ``torch.nn.functional.cross_entropy``'s."""

    binary_logits = 2

    def __init__(
        self,
        num_classes: int = 2,
        class_weights: Sequence[float] | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(num_classes, class_weights)
        self.label_smoothing = _smoothing(type(self).__name__, label_smoothing)

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(
            logits, targets, reduction="none", label_smoothing=self.label_smoothing
        )

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(logits.float(), dim=1)
        return p[:, 1] if self.is_binary else p


class HingeLoss(ClassificationLoss):
    """SVM hinge loss ``max(0, margin - y * s)`` on one score with y in {-1, +1}.

    Multiclass: the multi-class margin loss of ``torch.nn.MultiMarginLoss``
    (``sum_{j != y} max(0, margin - s_y + s_j) / C``). The scores are not calibrated
    probabilities; ``probabilities`` gives sigmoid(score) when binary and softmax(scores)
    when multiclass, which keeps the ranking the metrics (AUROC) need.
    """

    power: int = 1

    def __init__(
        self,
        num_classes: int = 2,
        class_weights: Sequence[float] | None = None,
        margin: float = 1.0,
    ) -> None:
        super().__init__(num_classes, class_weights)
        self.margin = _positive_number(type(self).__name__, "margin", margin)

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.is_binary:
            signs = targets.float() * 2 - 1
            return (self.margin - signs * logits[:, 0]).clamp_min(0).pow(self.power)
        return F.multi_margin_loss(
            logits, targets, p=self.power, margin=self.margin, reduction="none"
        )

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        if self.is_binary:
            return torch.sigmoid(logits.float()[:, 0])
        return torch.softmax(logits.float(), dim=1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, margin={self.margin}"


class SquaredHingeLoss(HingeLoss):
    """Squared hinge ``max(0, margin - y * s)^2``; multiclass: ``MultiMarginLoss(p=2)``."""

    power = 2


__all__ = [
    "BCELoss",
    "ClassificationLoss",
    "CrossEntropyLoss",
    "HingeLoss",
    "LossConfigError",
    "LossInputError",
    "SquaredHingeLoss",
]
