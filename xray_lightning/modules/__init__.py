"""LightningModules: the binary stages, the 3-class baseline and the cascade of the two stages.

Imported on first use (PEP 562), so ``modules.checkpoints`` can be read without Lightning.
"""

from importlib import import_module
from typing import Any

_WHERE = {
    "BinaryClassifier": "binary",
    "CascadeModule": "cascade",
    "MulticlassClassifier": "multiclass",
    "load_classifier": "checkpoints",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
