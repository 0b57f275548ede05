"""Lightning callbacks used by the training configs (conf/callbacks/)."""

from xray_lightning.callbacks.epoch_summary import EpochSummary
from xray_lightning.callbacks.finite_loss import FiniteLossGuard
from xray_lightning.callbacks.rng_state import RngStateCheckpoint

__all__ = ["EpochSummary", "FiniteLossGuard", "RngStateCheckpoint"]
