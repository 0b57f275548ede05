"""Progress for the command-line tools that label many images: count, rate and ETA, on stderr.

A bar is drawn only where someone watches it: stderr is a terminal. ``predict`` prints its rows
as it goes, so where stdout is the terminal too the rows are the progress and no bar is drawn;
it is for ``predict big/folder --csv > labels.csv``, where nothing else would move. Pipes, logs
and tests get no bar, so their output stays the same.
"""

from __future__ import annotations

import sys
from typing import IO, Any


def watched(rows_on_stdout: bool = False) -> bool:
    """Whether to draw a bar: stderr is a terminal, and (for a tool whose rows stream to
    stdout, ``rows_on_stdout``) stdout is not."""
    if not _is_terminal(sys.stderr):
        return False
    return not (rows_on_stdout and _is_terminal(sys.stdout))


def _is_terminal(stream: IO[str] | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def image_bar(total: int, description: str, show: bool) -> Any:
    """A tqdm bar over ``total`` images on stderr (``show=False``: one that draws nothing).
    It clears itself when done, so the report printed after it is the only thing left."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=description,
        unit="img",
        file=sys.stderr,
        disable=not show,
        leave=False,
        dynamic_ncols=True,
    )
