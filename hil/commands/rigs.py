"""`hil rigs list`, `hil rigs profiles` and `hil rigs check NAME [--probe]`.

Rigs and profiles are looked up as hil.rigdirs says: the project's (``--rig-dir``, else
``hil_rig_dir`` in its pytest configuration, then ./rigs), ``$HIL_RIG_DIR``, then the shipped ones.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from hil.errors import ConfigError, HilError
from hil.link import redact_url

if TYPE_CHECKING:
    from hil.rigdirs import RigSearch


RIG_DIR_HELP = ("the project's rig directory (default: hil_rig_dir in pytest.ini/pyproject.toml, "
                "then ./rigs); $HIL_RIG_DIR and the shipped rigs are searched after it")


def register(subparsers) -> None:
    parser = subparsers.add_parser("rigs", help="list and check rig files (rigs/NAME.toml)",
                                   description="Rig files: what each rig is and whether it answers.")
    sub = parser.add_subparsers(dest="rigs_command", metavar="SUBCOMMAND")

    p = sub.add_parser("list", help="list every rig the lookup order finds, and where from")
    p.add_argument("--rig-dir", default=None, metavar="DIR", help=RIG_DIR_HELP)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("profiles", help="list every firmware profile the lookup order finds, and its file")
    p.add_argument("name", nargs="?", metavar="NAME",
                   help="print only the file of this profile (e.g. to copy it for your own build)")
    p.add_argument("--rig-dir", default=None, metavar="DIR", help=RIG_DIR_HELP)
    p.set_defaults(func=cmd_profiles)

    p = sub.add_parser("check", help="validate a rig file; with --probe, open the port and ask the board")
    p.add_argument("name", help="rig name (rigs/NAME.toml) or path to a rig file")
    p.add_argument("--rig-dir", default=None, metavar="DIR", help=RIG_DIR_HELP)
    p.add_argument("--probe", action="store_true",
                   help="open the port (starting a temporary simulator for sim rigs) and report the "
                        "MaixPy version, free memory and SD card")
    p.set_defaults(func=cmd_check)

    def no_subcommand(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=no_subcommand)


def _search(args: argparse.Namespace) -> "RigSearch":
    from hil.rigdirs import RigSearch
    return RigSearch.default(args.rig_dir)


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])


def _short(source: str) -> str:
    return "shipped" if source.startswith("shipped") else source


def _listing(search: "RigSearch", files: dict[str, Path], header: tuple[str, ...],
             row: Callable[[str, str, Path], tuple[str, ...]]) -> tuple[list[tuple[str, ...]], int]:
    """A table with one row per file (what it says, or INVALID and why) and how many are invalid:
    one broken file must not hide the others."""
    rows, bad = [header], 0
    for name, path in sorted(files.items()):
        source = _short(search.source_of(path))
        try:
            rows.append(row(name, source, path))
        except ConfigError as exc:
            bad += 1
            rows.append((name, source, *["-"] * (len(header) - 3), f"INVALID: {exc}"))
    return rows, bad


def cmd_list(args: argparse.Namespace) -> int:
    from hil.rig import load_rig
    search = _search(args)
    files = search.names()
    if not files:
        raise ConfigError(f"no rig files (*.toml) in {search.where()}")
    print("rigs from: " + "; ".join(f"{d.source} ({d.path})" for d in search.dirs))

    def row(name: str, source: str, path: Path) -> tuple[str, ...]:
        rig = load_rig(path)
        port = f"sim ({rig.sim.transport})" if rig.sim else redact_url(rig.serial.port)
        return (rig.name, source, rig.board.name, port, rig.power.driver, rig.profile.name,
                rig.description)

    rows, bad = _listing(search, files, ("RIG", "FROM", "BOARD", "PORT", "POWER", "FIRMWARE",
                                         "DESCRIPTION"), row)
    _table(rows)
    return 1 if bad else 0


def cmd_profiles(args: argparse.Namespace) -> int:
    from hil.firmware import parse_profile
    search = _search(args)
    files = search.names("firmware")
    if args.name:
        if args.name not in files:
            raise ConfigError(f"firmware profile {args.name!r} not found in {search.where('firmware')} "
                              f"(known: {', '.join(sorted(files)) or 'none'})")
        print(files[args.name])
        return 0
    if not files:
        raise ConfigError(f"no firmware profiles (*.toml) in {search.where('firmware')}")
    def row(name: str, source: str, path: Path) -> tuple[str, ...]:
        prof = parse_profile(path)
        return (name, source, prof.version,
                ",".join(f"v{v}" for v in prof.kpu.load_versions) or "-", str(path))

    rows, bad = _listing(search, files, ("PROFILE", "FROM", "VERSION", "KMODEL", "FILE"), row)
    _table(rows)
    return 1 if bad else 0


def cmd_check(args: argparse.Namespace) -> int:
    from hil.rig import load_rig
    rig = load_rig(args.name, _search(args))
    port = f"simulated ({rig.sim.transport}, build {rig.sim.build})" if rig.sim else redact_url(rig.serial.port)
    print(f"rig {rig.name}: ok: {rig.board.title} on {port}, power {rig.power.driver}, "
          f"firmware profile {rig.profile.name}" + (f", image {rig.firmware.image}" if rig.firmware.image else "")
          + f" ({rig.path})")
    if not args.probe:
        return 0
    return probe(rig)


def probe(rig) -> int:
    """Hold the rig as a run would (its lock, or its labgrid place, which also gives a labgrid
    rig its serial port), then probe it. A simulated rig gets a throwaway simulator instead."""
    if rig.sim:
        return _probe(rig)
    from hil.farm.claim import take_rig
    with take_rig(rig, results=Path("results")) as held:
        return _probe(held)


def _probe(rig) -> int:
    """Open the rig, get the REPL (soft reset for a fresh banner) and report what answers."""
    from hil.board import Board
    scratch = Path(tempfile.mkdtemp(prefix="hil-probe-")) if rig.sim else None
    board = Board(rig, results=scratch or Path("results"),
                  sim_state=(scratch / "sim-state") if scratch else None)
    try:
        board.open()
        print(f"probe: port {board.port} open" + (f" (simulator pid {board.sim.pid})" if board.sim else ""))
        board.lifecycle.start()
        device = board.device
        mem = device.memory()
        print(f"probe: firmware {board.firmware_version or '(no banner seen)'}"
              + ("" if board.firmware_version in ("", rig.profile.version)
                 else f" (profile {rig.profile.name} expects {rig.profile.version})"))
        print(f"probe: banner: {board.banner}")
        gc = f"GC heap {device.gc_heap_size()} bytes, free {mem.gc_free}; " if device.supports("gc_heap") else ""
        print(f"probe: {gc}system heap free {mem.sys_heap_free} bytes")
        sd = device.sd_present()
        print(f"probe: SD card {'present' if sd else 'absent'}"
              + ("" if sd == rig.storage.sd else f" (rig says storage.sd = {str(rig.storage.sd).lower()})"))
        if board.recoveries:
            print(f"probe: needed recovery: {', '.join(board.recoveries)}")
    except HilError as exc:
        raise type(exc)(f"rig {rig.name}: probe failed: {exc}") if type(exc).__init__ is HilError.__init__ \
            else exc
    finally:
        board.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0
