"""`hil sim ...`: thin launchers of the simulated board, a program of its own (package k210sim).

Every subcommand runs ``python -m k210sim ...`` as a child process with the same arguments,
passes SIGTERM/SIGINT on to it and exits with its status; nothing of the simulator is imported
here (the framework reaches it only as a device). ``hil sim firmware -o X.kfpkg`` asks the
simulator for the .bin and packages it with hil's own kflash-package writer.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from hil.errors import ConfigError, SimError


def _run(argv: list[str]) -> int:
    from hil.board.simprocess import run_k210sim
    return run_k210sim(argv)


def register(subparsers) -> None:
    parser = subparsers.add_parser("sim", help="run a simulated K210 board (python -m k210sim)",
                                   description="Simulated K210 boards (no hardware needed): "
                                               "launchers of `python -m k210sim`.")
    sub = parser.add_subparsers(dest="sim_command", metavar="SUBCOMMAND")

    p = sub.add_parser(
        "serve", help="run one simulated board until SIGTERM/SIGINT",
        description="Run one simulated board (python -m k210sim serve). Prints one JSON line with "
                    "its endpoints when ready, then serves until SIGTERM or SIGINT.")
    p.add_argument("--state", required=True, metavar="DIR",
                   help="state directory (flash image, /flash, /sd, config); created if missing")
    p.add_argument("--board", default="maix-bit", help="board (default maix-bit)")
    p.add_argument("--build", metavar="NAME",
                   help="write this firmware build's image at flash 0 on start (python -m k210sim "
                        "builds lists them; default: a new state dir gets maixpy-v0.6.2-full)")
    p.add_argument("--pty", metavar="LINK", help="symlink to the pty (default DIR/ttyMAIX0)")
    p.add_argument("--rfc2217", default="127.0.0.1:0", metavar="HOST:PORT",
                   help="RFC 2217 server address, port 0 = any free port, 'none' = off")
    p.add_argument("--tcp", default=None, metavar="HOST:PORT", help="raw TCP server (default off)")
    p.add_argument("--pace", default="line", choices=("line", "off"),
                   help="pace bytes at the baud rate (line, default) or deliver at once (off)")
    p.add_argument("--listen-any", action="store_true", help="allow non-loopback listen addresses")

    def serve(args: argparse.Namespace) -> int:
        argv = ["serve", "--state", args.state, "--board", args.board, "--rfc2217", args.rfc2217,
                "--pace", args.pace]
        for flag, value in (("--build", args.build), ("--pty", args.pty), ("--tcp", args.tcp)):
            if value is not None:
                argv += [flag, value]
        if args.listen_any:
            argv.append("--listen-any")
        return _run(argv)

    p.set_defaults(func=serve)

    f = sub.add_parser(
        "firmware", help="write a simulated firmware build (.bin payload, wrapped image or .kfpkg)",
        description="FILE.bin: the payload kflash wraps; --wrapped: the image as it lands at flash "
                    "0; FILE.kfpkg: a kflash package with the firmware at 0 and --add ADDR:FILE "
                    "entries. --corrupt breaks the image's SHA-256 (needs --wrapped or .kfpkg).")
    f.add_argument("--build", required=True, help="firmware build (python -m k210sim builds)")
    f.add_argument("-o", "--output", required=True, type=Path, metavar="FILE")
    f.add_argument("--wrapped", action="store_true", help="write the wrapped image kflash puts at flash 0")
    f.add_argument("--corrupt", action="store_true", help="break the image's SHA-256")
    f.add_argument("--add", action="append", metavar="ADDR:FILE",
                   help="(.kfpkg) also write FILE raw at ADDR, e.g. 0x300000:m.kmodel; repeatable")

    def firmware(args: argparse.Namespace) -> int:
        out = build_firmware(args.build, args.output, args.wrapped, args.corrupt, args.add)
        print(f"{out}: {out.stat().st_size} bytes ({args.build})")
        return 0

    f.set_defaults(func=firmware)

    w = sub.add_parser(
        "wrap", help="run a command with the modem-line shim (kflash on the simulator's pty)",
        description="Run CMD with the simulator's LD_PRELOAD modem-line shim, so its DTR/RTS "
                    "changes on the pty reach the simulated board (python -m k210sim wrap).",
        epilog="example: hil sim wrap --state /tmp/sim -- kflash -p /tmp/sim/ttyMAIX0 -B bit fw.bin")
    w.add_argument("--state", required=True, metavar="DIR", help="the simulator's state directory")
    w.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ...", help="command to run")

    def wrap(args: argparse.Namespace) -> int:
        cmd = list(args.command)
        if cmd and cmd[0] == "--":
            cmd = cmd[1:]
        return _run(["wrap", "--state", args.state, "--", *cmd])

    w.set_defaults(func=wrap)

    def no_subcommand(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=no_subcommand)


def _parse_add(spec: str) -> tuple[int, Path]:
    addr, sep, path = spec.partition(":")
    if not sep or not path:
        raise ConfigError(f"--add {spec!r}: expected ADDR:FILE, e.g. 0x300000:model.kmodel")
    try:
        value = int(addr, 0)
    except ValueError:
        raise ConfigError(f"--add {spec!r}: bad address {addr!r}") from None
    return value, Path(path)


def _corrupt(image: bytes) -> bytes:
    b = bytearray(image)
    b[5 + 64] ^= 0xFF      # a payload byte past the metadata; the trailing SHA-256 is kept
    return bytes(b)


def build_firmware(build: str, out: Path, wrapped: bool = False, corrupt: bool = False,
                   add: list[str] | None = None) -> Path:
    """The simulator writes the .bin (or wrapped image); a .kfpkg is packaged here."""
    from hil.isp.image import KfpkgEntry, check_no_overlap, check_region, wrap_firmware, write_kfpkg
    kfpkg = out.suffix == ".kfpkg"
    if corrupt and not (wrapped or kfpkg):
        raise ConfigError("--corrupt needs --wrapped or a .kfpkg output: kflash re-hashes a payload")
    if add and not kfpkg:
        raise ConfigError(f"--add needs a .kfpkg output, not {out}")
    if not kfpkg:
        argv = ["firmware", "--build", build, "-o", str(out)]
        argv += ["--wrapped"] if wrapped else []
        argv += ["--corrupt"] if corrupt else []
        if _run(argv) != 0:
            raise SimError(f"python -m k210sim firmware --build {build} failed (see above)")
        return out
    with tempfile.TemporaryDirectory(prefix="hil-fw-") as tmp:
        payload_path = Path(tmp) / "firmware.bin"
        if _run(["firmware", "--build", build, "-o", str(payload_path)]) != 0:
            raise SimError(f"python -m k210sim firmware --build {build} failed (see above)")
        payload = payload_path.read_bytes()
    image = wrap_firmware(payload)
    if corrupt:
        entries = [KfpkgEntry(0, "firmware.img", _corrupt(image), False)]
    else:
        entries = [KfpkgEntry(0, "firmware.bin", payload, True)]
    for spec in add or []:
        addr, path = _parse_add(spec)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"--add {spec}: {path}: {exc.strerror}") from None
        check_region(addr, len(data), what=path.name)
        check_no_overlap(addr, len(data), len(image), what=path.name)
        entries.append(KfpkgEntry(addr, path.name, data, False))
    return write_kfpkg(out, entries)
