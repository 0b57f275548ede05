"""What every command shares: its name as typed, ``--version``, examples in ``--help``, exit codes.

Each tool is both ``python -m xray_lightning.<tool>`` and an installed ``xray-<tool>`` command
(``pyproject.toml``'s ``[project.scripts]`` point at the tools' ``entry_point``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from xray_lightning.paths import package_version


def program_name(module: str) -> str:
    """``xray-predict`` when run as the installed command, else ``python -m <module>``."""
    invoked = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return invoked if invoked.startswith("xray-") else f"python -m {module}"


def version_text(prog: str) -> str:
    return f"{prog} (xray-lightning {package_version()})"


def command_parser(
    module: str, description: str, examples: Sequence[str]
) -> argparse.ArgumentParser:
    """An ArgumentParser with ``--version`` and an "examples" section at the end of ``--help``."""
    prog = program_name(module)
    epilog = "examples:\n" + "\n".join(f"  {example.format(prog=prog)}" for example in examples)
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version_text(prog))
    return parser
