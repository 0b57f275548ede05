"""Log noise nobody acts on, silenced once for every entry point (train, bench, predict).

Lightning's own pytree helper trips torch's ``LeafSpec`` deprecation on every fit/validate/test,
Lightning advertises a cloud logger on every Trainer it builds, and it warns that a small stage
(the demo's) has fewer batches than ``log_every_n_steps``: every metric here is logged per epoch
(``on_step=False``), so the step interval changes nothing.
"""

from __future__ import annotations

import logging
import warnings

warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
warnings.filterwarnings("ignore", message=r".*is smaller than the logging interval")


class NoAdverts(logging.Filter):
    """Drops Lightning's "💡 Tip" log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith("💡 Tip")


logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(NoAdverts())
