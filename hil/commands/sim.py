"""`hil sim ...`: run and manage simulated boards.

``serve`` lives here. Other subcommands register themselves from their own modules
(``hil.commands.sim_firmware``, ``hil.commands.sim_wrap``), each exposing
``register(sim_subparsers)``; a module that does not exist yet is skipped.
"""
from __future__ import annotations

import argparse
import importlib

EXTRA_MODULES = ("hil.commands.sim_firmware", "hil.commands.sim_wrap")


def register(subparsers) -> None:
    parser = subparsers.add_parser("sim", help="run a simulated K210 board",
                                   description="Simulated K210 boards (no hardware needed).")
    sub = parser.add_subparsers(dest="sim_command", metavar="SUBCOMMAND")
    _register_serve(sub)
    for name in EXTRA_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        mod.register(sub)

    def no_subcommand(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=no_subcommand)


def _register_serve(sub) -> None:
    p = sub.add_parser(
        "serve", help="run one simulated board until SIGTERM/SIGINT",
        description="Run one simulated board. Prints one JSON line with its endpoints when ready, "
                    "then serves until SIGTERM or SIGINT.")
    p.add_argument("--state", required=True, metavar="DIR",
                   help="state directory (flash image, /flash, /sd, config); created if missing")
    p.add_argument("--board", default="maix-bit", help="board from the catalogue (default maix-bit)")
    p.add_argument("--firmware", metavar="PROFILE",
                   help="write this firmware profile's image at flash 0 on start "
                        "(default: a new state dir gets maixpy-v0.6.2-full, an existing one keeps its flash)")
    p.add_argument("--pty", metavar="LINK", help="symlink to the pty (default DIR/ttyMAIX0)")
    p.add_argument("--rfc2217", default="127.0.0.1:0", metavar="HOST:PORT",
                   help="RFC 2217 server address, port 0 = any free port, 'none' = off (default 127.0.0.1:0)")
    p.add_argument("--tcp", default=None, metavar="HOST:PORT",
                   help="raw TCP server for socket:// URLs (default off)")
    p.add_argument("--pace", default="line", choices=("line", "off"),
                   help="pace bytes at the baud rate (line, default) or deliver at once (off)")
    p.add_argument("--listen-any", action="store_true",
                   help="allow non-loopback listen addresses")

    def run(args: argparse.Namespace) -> int:
        from hil.sim.server import serve
        return serve(args)

    p.set_defaults(func=run)
