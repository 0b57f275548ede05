"""Log noise nobody acts on, silenced once for every entry point (train, bench, predict).

Lightning's own pytree helper trips torch's ``LeafSpec`` deprecation on every fit/validate/test,
and Lightning advertises a cloud logger on every Trainer it builds.
"""

from __future__ import annotations

import logging
import warnings

warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


class NoAdverts(logging.Filter):
    """Drops Lightning's "💡 Tip" log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith("💡 Tip")


logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(NoAdverts())
