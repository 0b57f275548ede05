"""Exceptions for bad or missing data: each one carries a message that says what to do."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class BadDataError(ValueError):
    """The dataset cannot be used as it is; ``problems`` lists ``(path, reason)`` pairs."""

    def __init__(self, message: str, problems: Sequence[tuple[Path, str]] = ()) -> None:
        super().__init__(message)
        self.problems: list[tuple[Path, str]] = list(problems)


class LayoutError(BadDataError):
    """The folder structure is wrong: unknown layout, missing class folder, empty split."""


class DatasetNotFoundError(LayoutError, FileNotFoundError):
    """No dataset at the configured root."""


class BadFilesError(BadDataError):
    """One or more image files are unreadable or not what the config expects."""


class BadImageError(BadDataError):
    """One image file is unreadable or not what the config expects."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}", [(self.path, reason)])


class TooManyPixelsError(BadImageError):
    """An image has more pixels than the limit (told from its header, before decoding)."""


class BadFileWarning(UserWarning):
    """Bad files were skipped (``on_bad_file=skip``)."""


def format_problems(problems: Sequence[tuple[Path, str]], limit: int | None = None) -> str:
    """One line per problem, ``  path: reason``; ``limit`` caps the lines shown."""
    shown = list(problems) if limit is None else list(problems)[:limit]
    lines = [f"  {path}: {reason}" for path, reason in shown]
    if limit is not None and len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more")
    return "\n".join(lines)
