"""The ``morphoscope`` command: a thin layer over the Python API.

Each sub-command lives in its own module of this package and provides two things:

``add_parser(subparsers)``
    registers its ``argparse`` sub-parser and sets ``func`` to its handler;
handler ``(args) -> int``
    calls the Python API, shows progress, writes files, returns an exit status.

Errors raised on purpose (:class:`~morphoscope.exceptions.MorphoscopeError`) are
printed as one line, ``morphoscope: error: <input>: <problem>``, with exit status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ..exceptions import MorphoscopeError

__all__ = ["build_parser", "main"]

#: Sub-command modules, in the order ``morphoscope --help`` lists them.
COMMANDS: tuple[str, ...] = ("run", "demo", "emission", "classify", "inspect", "nn")


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level argument parser with every sub-command registered."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="morphoscope",
        description="Galaxy morphology catalogs from astronomical images.",
    )
    parser.add_argument("--version", action="version", version=f"morphoscope {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f".{name}", __name__)
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``morphoscope`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except MorphoscopeError as exc:
        print(f"morphoscope: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover - interactive
        print("morphoscope: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
