"""Networks (all trained from scratch) and their weight-initialisation schemes."""

from ._checks import ModelConfigError
from .cnn import ReportCNN
from .cnn_bn import CNNBN
from .init import SCHEMES, apply_init
from .resnet import ResNet18

__all__ = ["CNNBN", "SCHEMES", "ModelConfigError", "ReportCNN", "ResNet18", "apply_init"]
