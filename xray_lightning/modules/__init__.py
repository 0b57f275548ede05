"""LightningModules: the binary stages, the 3-class baseline and the cascade of the two stages."""

from xray_lightning.modules.binary import BinaryClassifier
from xray_lightning.modules.cascade import CascadeModule
from xray_lightning.modules.checkpoints import load_classifier
from xray_lightning.modules.multiclass import MulticlassClassifier

__all__ = ["BinaryClassifier", "CascadeModule", "MulticlassClassifier", "load_classifier"]
