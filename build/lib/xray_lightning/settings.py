"""Typed settings, validated once: a dataclass per config section is the one source of defaults.

Each field carries its default and its rule (:func:`setting`). :func:`validate` fills the defaults,
refuses unknown keys and checks every value, raising one :class:`ConfigError` that has one line per
bad key naming the key, the value and what is allowed. ``conf/data/xray.yaml`` repeats the data
defaults for readers; ``tests/test_settings.py`` fails if the YAML and these classes ever disagree.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from xray_lightning.errors import XrayLightningError


class ConfigError(XrayLightningError, ValueError):
    """One or more config values are wrong; the message has one line per bad key."""


@dataclasses.dataclass(frozen=True)
class Rule:
    """What a value must be: ``allowed`` (for the message) and ``check`` (the normalised value,
    or ValueError)."""

    allowed: str
    check: Callable[[Any], Any]


def setting(default: Any, rule: Rule) -> Any:
    """A dataclass field with its default and its rule."""
    return dataclasses.field(default=default, metadata={"rule": rule})


def _fail() -> Any:
    raise ValueError


def flag() -> Rule:
    return Rule("true or false", lambda v: v if isinstance(v, bool) else _fail())


def one_of(*choices: Any, aliases: Mapping[str, Any] | None = None) -> Rule:
    """One of ``choices``; ``aliases`` maps other spellings (e.g. "none" for null) to a choice."""
    allowed = ", ".join("null" if c is None else str(c) for c in choices)
    aliases = dict(aliases or {})

    def check(value: Any) -> Any:
        if isinstance(value, str) and value in aliases:
            return aliases[value]
        return value if value in choices else _fail()

    return Rule(f"one of {allowed}", check)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def number(low: float, high: float, high_inclusive: bool = False) -> Rule:
    """A number in [low, high) (or [low, high])."""
    bracket = "]" if high_inclusive else ")"

    def check(value: Any) -> float:
        inside = (
            _is_number(value)
            and low <= value
            and (value <= high if high_inclusive else value < high)
        )
        return float(value) if inside else _fail()

    return Rule(f"a number in [{low:g}, {high:g}{bracket}", check)


def integer(minimum: int = 0, allow_none: bool = False) -> Rule:
    """An integer >= minimum (or null)."""
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def check(value: Any) -> int | None:
        if value is None and allow_none:
            return None
        ok = (
            isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum
        )
        return int(value) if ok else _fail()

    return Rule(what + (" or null" if allow_none else ""), check)


def positive() -> Rule:
    """A finite number > 0."""

    def check(value: Any) -> float:
        ok = _is_number(value) and math.isfinite(value) and value > 0
        return float(value) if ok else _fail()

    return Rule("a finite number > 0", check)


def check(rule: Rule, value: Any, key: str, error: type[Exception] = ConfigError) -> Any:
    """One value against one rule: the normalised value, or ``error`` naming ``key``, the value
    and what is allowed (the constructors of nets, losses and inits use this too)."""
    try:
        return rule.check(value)
    except (ValueError, TypeError):
        raise error(f"{key} must be {rule.allowed}; got {value!r}") from None


def optional_number() -> Rule:
    return Rule(
        "a number or null", lambda v: None if v is None else float(v) if _is_number(v) else _fail()
    )


def optional_text() -> Rule:
    return Rule(
        "a path or null",
        lambda v: (
            None
            if v is None
            else str(v)
            if isinstance(v, str | bytes) or hasattr(v, "__fspath__")
            else _fail()
        ),
    )


def plain(values: Any) -> dict[str, Any]:
    """A mapping (an OmegaConf DictConfig too) as a plain dict; None as {}."""
    if values is None:
        return {}
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(values, DictConfig):
            return dict(OmegaConf.to_container(values, resolve=True))  # type: ignore[arg-type]
    except ImportError:  # pragma: no cover
        pass
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"expected a mapping of settings, got {type(values).__name__}: {values!r}"
        )
    return dict(values)


def defaults(schema: type) -> dict[str, Any]:
    """The schema's defaults as a plain dict (nested sections as dicts)."""
    out = {}
    for item in dataclasses.fields(schema):
        if item.default_factory is not dataclasses.MISSING:  # a nested section
            out[item.name] = defaults(type(item.default_factory()))
        else:
            out[item.name] = item.default
    return out


def _problems(schema: type, values: Any, prefix: str, out: dict[str, Any]) -> list[str]:
    given = plain(values)
    fields = {item.name: item for item in dataclasses.fields(schema)}
    problems = [
        f"{prefix}.{key}: unknown key (known keys: {', '.join(fields)})"
        for key in sorted(set(given) - set(fields))
    ]
    for name, item in fields.items():
        if item.default_factory is not dataclasses.MISSING:  # a nested section
            section = type(item.default_factory())
            out[name] = {}
            try:
                problems += _problems(section, given.get(name), f"{prefix}.{name}", out[name])
            except ConfigError as error:
                problems.append(f"{prefix}.{name}: {error}")
            continue
        value = given.get(name, item.default)
        rule: Rule = item.metadata["rule"]
        try:
            out[name] = rule.check(value)
        except (ValueError, TypeError):
            problems.append(f"{prefix}.{name} must be {rule.allowed}; got {value!r}")
    return problems


def validate(schema: type, values: Any, prefix: str) -> dict[str, Any]:
    """``values`` (a mapping or DictConfig) checked against ``schema``, defaults filled in."""
    out: dict[str, Any] = {}
    problems = _problems(schema, values, prefix, out)
    if problems:
        raise ConfigError("\n".join(problems))
    return out
