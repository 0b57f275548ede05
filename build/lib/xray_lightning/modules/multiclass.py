"""The report's "architecture 1": one network with a softmax over normal / non-covid / covid."""

from __future__ import annotations

from torchmetrics import Metric, MetricCollection

from xray_lightning.modules.classifier import ClassifierModule
from xray_lightning.modules.metrics import confusion_matrix, multiclass_metrics


class MulticlassClassifier(ClassifierModule):
    """3-class classifier with accuracy, macro F1, per-class precision/recall and AUROC."""

    def build_metrics(self) -> MetricCollection:
        return multiclass_metrics(self.class_names)

    def build_confusion(self) -> Metric:
        return confusion_matrix(len(self.class_names))
