"""`hil sim wrap --state DIR -- CMD ...`: run a serial client with DTR/RTS reaching the simulator."""
from __future__ import annotations

import argparse


def register(sim_sub) -> None:
    p = sim_sub.add_parser(
        "wrap", help="run a command with the modem-line shim (kflash on the simulator's pty)",
        description="Run CMD with the LD_PRELOAD modem-line shim, so its DTR/RTS changes on the "
                    "simulator's pty reach the simulated board (needed by kflash). The shim is "
                    "built with the system C compiler on first use.",
        epilog="example: hil sim wrap --state /tmp/sim -- kflash -p /tmp/sim/ttyMAIX0 -B bit fw.bin")
    p.add_argument("--state", required=True, metavar="DIR", help="the simulator's state directory")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ...", help="command to run")

    def run(args: argparse.Namespace) -> int:
        from hil.sim.wrap import exec_wrapped
        argv = list(args.command)
        if argv and argv[0] == "--":
            argv = argv[1:]
        exec_wrapped(args.state, argv)
        return 0   # not reached: exec_wrapped replaces the process or raises

    p.set_defaults(func=run)
