"""The `hil` command: a thin dispatcher.

Each command group lives in its own module under hil/commands/ and exposes
``register(subparsers)``; this module only wires them together, so no single CLI module grows.
Its manners: ``hil --version``; a mistake in a subcommand's options is told with that
subcommand's usage; every error is one line on stderr and exit 2 (a port that cannot be opened
and a file that cannot be read included: no traceback, no raw pyserial text).
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

from hil import __version__
from hil.errors import HilError

# Command groups, each a module in hil.commands with register(subparsers).
GROUPS = ("init", "models", "sim", "rigs", "flash", "report", "nightly")


def _version() -> str:
    import platform
    where = os.path.dirname(os.path.abspath(__file__))
    return f"hil {__version__} ({where}, Python {platform.python_version()})"


def _own_parsers(parser: argparse.ArgumentParser) -> None:
    """Every (sub)parser records itself as the one that parsed, so an error can show its usage."""
    parser.set_defaults(_hil_parser=parser)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _own_parsers(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hil", description="K210 hardware-in-the-loop tools")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="group", metavar="COMMAND")
    for name in GROUPS:
        try:
            mod = importlib.import_module(f"hil.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"hil.commands.{name}":
                continue  # group not built yet
            raise
        mod.register(sub)
    _own_parsers(parser)
    return parser


def os_error(exc: OSError) -> str:
    """An OSError (pyserial's SerialException is one) as one line naming the file or port, without
    the nested ``[Errno 2]`` prefixes pyserial repeats."""
    if exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return re.sub(r"\[Errno -?\d+\] ", "", " ".join(str(exc).split())) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        getattr(args, "_hil_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args) or 0)
    except HilError as exc:
        print(f"hil: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hil: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `hil ... | head`: the reader left; say nothing more, and keep Python's exit-time flush quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        # The environment refused (a file, a directory, a port): one line, not a traceback.
        print(f"hil: {os_error(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
