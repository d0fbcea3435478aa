"""The `hil` command: a thin dispatcher.

Each command group lives in its own module under hil/commands/ and exposes
``register(subparsers)``; this module only wires them together, so no single CLI module grows.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from hil.errors import HilError

# Command groups, each a module in hil.commands with register(subparsers).
GROUPS = ("init", "models", "sim", "rigs", "flash", "report", "nightly")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hil", description="K210 hardware-in-the-loop tools")
    sub = parser.add_subparsers(dest="group", metavar="COMMAND")
    for name in GROUPS:
        try:
            mod = importlib.import_module(f"hil.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"hil.commands.{name}":
                continue  # group not built yet
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
