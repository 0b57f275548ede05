"""Argument checks shared by the model constructors: one clear ValueError per bad value, from
the same rules as the config schema (``xray_lightning.settings``)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING

from xray_lightning.settings import check, integer, number

if TYPE_CHECKING:
    import torch


class ModelConfigError(ValueError):
    """A model or init parameter has a value the network cannot be built with."""


def check_positive_int(owner: str, name: str, value: object) -> int:
    """Return ``value`` as int, or raise naming ``owner: name`` if it is not an int >= 1."""
    return check(integer(1), value, f"{owner}: {name}", ModelConfigError)


def check_int_sequence(
    owner: str, name: str, value: object, *, allow_empty: bool = False
) -> tuple[int, ...]:
    """Return ``value`` as a tuple of positive ints (lists and Hydra ListConfigs accepted)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ModelConfigError(f"{owner}: {name} must be a list of integers >= 1, got {value!r}")
    items = tuple(value)
    if not items and not allow_empty:
        raise ModelConfigError(f"{owner}: {name} must not be empty")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral) or item < 1:
            raise ModelConfigError(
                f"{owner}: {name} must be a list of integers >= 1, got {list(items)!r}"
            )
    return tuple(int(i) for i in items)


def check_dropout(owner: str, value: object, name: str = "dropout") -> float:
    """Return ``value`` as float, or raise if it is not a probability in [0, 1)."""
    return check(number(0.0, 1.0), value, f"{owner}: {name}", ModelConfigError)


def check_image_size(owner: str, value: object) -> tuple[int, int]:
    """Return ``(height, width)`` from an int (square) or a pair of ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and len(value) == 2:
        h, w = value
        check_positive_int(owner, "image_size", h)
        check_positive_int(owner, "image_size", w)
        return int(h), int(w)
    raise ModelConfigError(f"{owner}: image_size must be an int or [height, width], got {value!r}")


def check_input_channels(model: object, x: torch.Tensor, in_channels: int) -> None:
    """Raise a ValueError naming the model unless ``x`` is [B, in_channels, H, W]."""
    if x.ndim != 4 or x.shape[1] != in_channels:
        raise ValueError(
            f"{type(model).__name__} expects input [B, {in_channels}, H, W], got {list(x.shape)}"
        )
