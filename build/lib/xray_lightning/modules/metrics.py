"""torchmetrics collections: one object per split, built by these factories."""

from __future__ import annotations

from collections.abc import Sequence

from torchmetrics import ClasswiseWrapper, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryConfusionMatrix,
    BinaryF1Score,
    BinaryPrecision,
    BinaryRecall,
    BinarySpecificity,
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)


def binary_metrics(threshold: float = 0.5) -> MetricCollection:
    """Scalar metrics of a binary classifier fed with positive-class probabilities."""
    return MetricCollection(
        {
            "acc": BinaryAccuracy(threshold=threshold),
            "precision": BinaryPrecision(threshold=threshold),
            "recall": BinaryRecall(threshold=threshold),
            "f1": BinaryF1Score(threshold=threshold),
            "specificity": BinarySpecificity(threshold=threshold),
            "auroc": BinaryAUROC(),
        }
    )


def multiclass_metrics(class_names: Sequence[str], with_auroc: bool = True) -> MetricCollection:
    """3-class metrics: accuracy, macro F1/precision/recall, per-class precision and recall."""
    num_classes = len(class_names)
    labels = [name.replace("-", "_") for name in class_names]
    metrics = {
        "acc": MulticlassAccuracy(num_classes=num_classes, average="micro"),
        "f1_macro": MulticlassF1Score(num_classes=num_classes, average="macro"),
        "precision_macro": MulticlassPrecision(num_classes=num_classes, average="macro"),
        "recall_macro": MulticlassRecall(num_classes=num_classes, average="macro"),
        "precision": ClasswiseWrapper(
            MulticlassPrecision(num_classes=num_classes, average=None),
            labels=labels,
            prefix="precision_",
        ),
        "recall": ClasswiseWrapper(
            MulticlassRecall(num_classes=num_classes, average=None),
            labels=labels,
            prefix="recall_",
        ),
    }
    if with_auroc:
        metrics["auroc"] = MulticlassAUROC(num_classes=num_classes, average="macro")
    return MetricCollection(metrics)


def confusion_matrix(num_classes: int, threshold: float = 0.5):
    """Counts confusion matrix (rows: true class, columns: predicted class)."""
    if num_classes == 2:
        return BinaryConfusionMatrix(threshold=threshold)
    return MulticlassConfusionMatrix(num_classes=num_classes)
