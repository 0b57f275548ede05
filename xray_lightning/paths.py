"""Where the package's own files are, in a checkout and in an installed copy.

An installed wheel carries the Hydra configs as ``xray_lightning/conf`` and the shipped cascade as
``xray_lightning/shipped`` (``pyproject.toml`` maps ``conf/`` and ``experiments/best/`` there); a
checkout (also an editable install) uses ``conf/`` and ``experiments/best/`` directly.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CONFIG_DIR = PACKAGE / "conf" if (PACKAGE / "conf").is_dir() else PACKAGE.parent / "conf"
SHIPPED = (
    PACKAGE / "shipped"
    if (PACKAGE / "shipped").is_dir()
    else PACKAGE.parent / "experiments" / "best"
)


def package_version() -> str:
    """The installed distribution's version (``pyproject.toml``), or "unknown"."""
    try:
        return version("xray-lightning")
    except PackageNotFoundError:
        return "unknown"
