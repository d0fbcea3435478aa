"""`hil init [DIR]`: start a firmware team's own HIL project (hil.project.init says what it writes)."""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path


def register(subparsers) -> None:
    from hil.boards import BOARDS
    from hil.project.init import DEFAULT_PROFILE, DEFAULT_RIG
    p = subparsers.add_parser(
        "init", help="write a starting project: a rig for your board, a suite of your own, CI",
        description="Write a starting HIL project into DIR (default: the current directory): "
                    "pytest.ini, conftest.py, rigs/RIG.toml for your board, an example suite "
                    "next to the shipped ones, and a CI snippet for the nightly. Then `pytest "
                    "--rig sim` there runs the shipped suites and yours on a simulated board.")
    p.add_argument("dir", nargs="?", default=".", metavar="DIR", help="project directory (created if missing)")
    p.add_argument("--board", default="maix-bit", choices=sorted(BOARDS), help="your board (default maix-bit)")
    p.add_argument("--rig", default=DEFAULT_RIG, metavar="NAME",
                   help=f"name of your board's rig file, rigs/NAME.toml (default {DEFAULT_RIG})")
    p.add_argument("--profile", default=DEFAULT_PROFILE, metavar="NAME",
                   help=f"firmware profile your rig starts with (default {DEFAULT_PROFILE}; "
                        "`hil rigs profiles` lists them)")
    p.add_argument("--force", action="store_true", help="overwrite files that already exist")
    p.set_defaults(func=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    from hil.firmware import load_profile
    from hil.project.init import write_project
    load_profile(args.profile)          # an unknown profile is one line before anything is written
    dest = Path(args.dir)
    files = write_project(dest, rig=args.rig, board=args.board, profile=args.profile, force=args.force)
    width = max(len(f.path) for f in files)
    print(f"hil init: a HIL project in {dest.resolve()}:")
    for f in files:
        print(f"  {f.path:<{width}}  {f.what}")
    here = "" if dest.resolve() == Path.cwd().resolve() else f"cd {shlex.quote(str(dest))} && "
    steps = [(f"{here}pytest --rig sim", "the shipped suites and yours, on a simulated Maix Bit"),
             (f"hil rigs check {args.rig} --probe", f"once your board is on the port in rigs/{args.rig}.toml"),
             (f"pytest --rig {args.rig}", "the same suites on your board")]
    width = max(len(cmd) for cmd, _ in steps)
    print("next:")
    for cmd, why in steps:
        print(f"  {cmd:<{width}}   # {why}")
    return 0
