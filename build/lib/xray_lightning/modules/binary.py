"""One LightningModule for both binary stages (normal vs infected, covid vs non-covid)."""

from __future__ import annotations

from torchmetrics import Metric, MetricCollection

from xray_lightning.modules.classifier import ClassifierModule
from xray_lightning.modules.metrics import binary_metrics, confusion_matrix


class BinaryClassifier(ClassifierModule):
    """Binary classifier: accuracy, precision, recall, F1, specificity, AUROC at ``threshold``."""

    def build_metrics(self) -> MetricCollection:
        return binary_metrics(self.hparams.threshold)

    def build_confusion(self) -> Metric:
        return confusion_matrix(2, self.hparams.threshold)
