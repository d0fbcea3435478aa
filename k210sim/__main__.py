"""``python -m k210sim``: the simulated K210 board as a program of its own.

    python -m k210sim serve --state DIR [--board maix-bit] [--build NAME] [--pace line|off]
                            [--pty LINK] [--rfc2217 HOST:PORT|none] [--tcp HOST:PORT] [--listen-any]
    python -m k210sim firmware --build NAME -o FILE [--wrapped] [--corrupt]
    python -m k210sim wrap --state DIR -- CMD ...
    python -m k210sim builds

``serve`` prints one JSON line with its endpoints when ready and runs until SIGTERM/SIGINT.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from k210sim.errors import SimError


def _corrupt(image: bytes) -> bytes:
    b = bytearray(image)
    b[5 + 64] ^= 0xFF      # a payload byte past the metadata; the trailing SHA-256 is kept
    return bytes(b)


def write_firmware(build_name: str, out: Path, wrapped: bool = False, corrupt: bool = False) -> Path:
    from k210sim.builds import load_build
    from k210sim.firmware_image import make_image, make_payload
    build = load_build(build_name)
    if corrupt and not wrapped:
        raise SimError("--corrupt needs --wrapped: whoever wraps a payload hashes it afresh")
    data = make_image(build) if wrapped else make_payload(build)
    if corrupt:
        data = _corrupt(data)
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(out)
    except OSError as exc:
        raise SimError(f"{out}: {exc.strerror or exc}") from None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m k210sim",
                                     description="A simulated K210 board running MaixPy.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("serve", help="run one simulated board until SIGTERM/SIGINT")
    p.add_argument("--state", required=True, metavar="DIR",
                   help="state directory (flash image, /flash, /sd, config); created if missing")
    p.add_argument("--board", default="maix-bit", help="maix-bit, maix-dock, maix-go, maixduino, kd233")
    p.add_argument("--build", metavar="NAME",
                   help="write this firmware build's image at flash 0 on start (default: a new "
                        "state dir gets maixpy-v0.6.2-full, an existing one keeps its flash)")
    p.add_argument("--pty", metavar="LINK", help="symlink to the pty (default DIR/ttyMAIX0)")
    p.add_argument("--rfc2217", default="127.0.0.1:0", metavar="HOST:PORT",
                   help="RFC 2217 server, port 0 = any free port, 'none' = off")
    p.add_argument("--tcp", default=None, metavar="HOST:PORT", help="raw TCP server (default off)")
    p.add_argument("--pace", default="line", choices=("line", "off"),
                   help="pace bytes at the baud rate (line) or deliver at once (off)")
    p.add_argument("--listen-any", action="store_true", help="allow non-loopback listen addresses")
    f = sub.add_parser("firmware", help="write a simulated firmware build (.bin payload or wrapped image)")
    f.add_argument("--build", required=True, help="firmware build name (python -m k210sim builds)")
    f.add_argument("-o", "--output", required=True, type=Path, metavar="FILE")
    f.add_argument("--wrapped", action="store_true", help="the wrapped image kflash puts at flash 0")
    f.add_argument("--corrupt", action="store_true", help="break the wrapped image's SHA-256")
    w = sub.add_parser("wrap", help="run a serial client with its DTR/RTS reaching the simulator")
    w.add_argument("--state", required=True, metavar="DIR")
    w.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    sub.add_parser("builds", help="list the firmware builds the simulator can run")
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            from k210sim.server import serve
            return serve(args)
        if args.command == "firmware":
            out = write_firmware(args.build, args.output, args.wrapped, args.corrupt)
            print(f"{out}: {out.stat().st_size} bytes ({args.build})")
            return 0
        if args.command == "wrap":
            from k210sim.wrap import exec_wrapped
            cmd = list(args.cmd)
            if cmd and cmd[0] == "--":
                cmd = cmd[1:]
            exec_wrapped(args.state, cmd)
            return 0
        if args.command == "builds":
            from k210sim.builds import available, load_build
            for name in available():
                b = load_build(name)
                print(f"{name:48} {b.kpu_library}-loader  {b.version}  {b.description}")
            return 0
    except (SimError, KeyError) as exc:
        print(f"k210sim: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
