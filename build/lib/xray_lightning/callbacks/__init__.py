"""Lightning callbacks used by the training configs (conf/callbacks/)."""

from xray_lightning.callbacks.checkpoint import RunCheckpoint
from xray_lightning.callbacks.confusion_image import ConfusionImage
from xray_lightning.callbacks.ema import EMAWeights
from xray_lightning.callbacks.epoch_seed import EpochSeed
from xray_lightning.callbacks.epoch_summary import EpochSummary
from xray_lightning.callbacks.finite_loss import FiniteLossGuard
from xray_lightning.callbacks.job_progress import JobProgressBar

__all__ = [
    "ConfusionImage",
    "EMAWeights",
    "EpochSeed",
    "EpochSummary",
    "FiniteLossGuard",
    "JobProgressBar",
    "RunCheckpoint",
]
