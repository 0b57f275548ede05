"""One set of exit codes for every command, and one-line errors instead of tracebacks.

0 ok · 1 some inputs (files, jobs, the run) failed · 2 usage, config or checkpoint error ·
130 interrupted (Ctrl-C / SIGTERM).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn

from xray_lightning.errors import XrayLightningError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def run_cli(main: Callable[[], int | None]) -> NoReturn:
    """Run a command's ``main`` and exit with its code; an interrupt exits 130 and a user error
    (an :class:`XrayLightningError` that escaped) exits 2, each with one line on stderr."""
    try:
        code = main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except XrayLightningError as error:
        print(f"error: {error}", file=sys.stderr)
        code = EXIT_USAGE
    raise SystemExit(EXIT_OK if code is None else code)
