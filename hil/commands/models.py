"""`hil models build|info|make`: the model fixtures, a kmodel's parsed header, one generated model.

    hil models build [--out DIR]      regenerate fixtures/models (writer ones always, nncase ones
                                      when nncase is installed) and print a summary table
    hil models info FILE [--layers]   parsed header as JSON; exit 2 with one line for a bad file
                                      (also a FIFO, a device, or a file bigger than the K210's flash)
    hil models make --version 3|4 --size N [--main-mem N] [--seed S] [--kernel 1|3] -o FILE

Sizes accept decimal, 0x hex, and K/M suffixes in KiB/MiB (300K, 2M, 1.5M).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

from hil.errors import ConfigError

# The biggest file kpu.load could take: a model in flash fits the 16 MiB chip (from the SD card it
# must even fit the 6 MiB of SRAM); info reads a file whole only up to this.
MAX_KMODEL_BYTES = 16 * 1024 * 1024


def parse_size(text: str) -> int:
    """'4096', '0x300000', '300K', '2M', '1.5M' -> bytes (K = 1024, M = 1024 * 1024)."""
    t = text.strip()
    try:
        if t.lower().startswith("0x"):
            return int(t, 16)
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKmM]?)(?:i?[bB])?", t)
        if not m:
            raise ValueError
        scale = {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]
        value = float(m.group(1)) * scale
        if value != int(value):
            raise ValueError
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a byte count (examples: 4096, 0x300000, 300K, 2M)") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="kmodel fixtures: build, inspect, generate",
                              description="kmodel files: the fixture set, header inspection, "
                                          "exact-size v3/v4 generation.")
    sub = p.add_subparsers(dest="models_cmd", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])

    b = sub.add_parser("build", help="regenerate the model fixtures and their manifest")
    b.add_argument("--out", metavar="DIR", help="fixture directory (default: fixtures/models)")
    b.set_defaults(func=cmd_build)

    i = sub.add_parser("info", help="print a kmodel's parsed header as JSON")
    i.add_argument("file", metavar="FILE")
    i.add_argument("--layers", action="store_true", help="also list layers/nodes (v3/v4)")
    i.set_defaults(func=cmd_info)

    m = sub.add_parser("make", help="write one valid kmodel v3/v4 of an exact size")
    m.add_argument("--version", type=int, choices=(3, 4), required=True)
    m.add_argument("--size", type=parse_size, required=True, metavar="N")
    m.add_argument("--main-mem", type=parse_size, default=None, metavar="N",
                   help="main memory the header asks for (default 64K)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--kernel", type=int, choices=(1, 3), default=3,
                   help="conv kernel of the feature layers (default 3)")
    m.add_argument("-o", "--output", required=True, metavar="FILE")
    m.set_defaults(func=cmd_make)


def cmd_build(args: argparse.Namespace) -> int:
    from hil.kmodel import fixtures, nncase
    from hil.resources import installed
    if args.out is None and installed():
        raise ConfigError("hil models build: k210-hil is installed, not run from a checkout: pass "
                          "--out DIR (the shipped fixtures are read-only; large ones are built on first use)")
    out = Path(args.out) if args.out else fixtures.DEFAULT_DIR
    if not nncase.available():
        print(f"nncase is not installed: keeping the committed v5 fixtures "
              f"({nncase.EXTRA_HINT})", file=sys.stderr)
    rows = fixtures.build_all(out, log=lambda s: print(s, file=sys.stderr))
    width = max(len(f.name) for f, _ in rows)
    print(f"{'name':<{width}}  version  {'size':>9}  {'expect':<11}  note")
    for f, note in rows:
        print(f"{f.name:<{width}}  {f.version or '-':>7}  {f.size:>9}  {f.expect:<11}  {note}")
    committed = sum(f.size for f, _ in rows if f.committed)
    print(f"{len(rows)} fixtures, {committed} bytes committed, manifest {out / fixtures.MANIFEST}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from hil.kmodel.describe import describe
    from hil.kmodel.format import parse_kmodel, sniff_version
    from hil.kmodel.verdict import maixpy_load_error
    from hil.inputfile import read_head, read_regular
    path = Path(args.file)
    head, size = read_head(path, 64)           # a FIFO, a device or a directory: refused, unopened
    if size > MAX_KMODEL_BYTES:
        version = sniff_version(head)
        raise ConfigError(f"{path}: {size} bytes, more than any kmodel a K210 can load ({MAX_KMODEL_BYTES} "
                          "bytes at most, its whole flash); "
                          + (f"the header says kmodel v{version}" if version else "no kmodel header either"))
    data = read_regular(path, MAX_KMODEL_BYTES, "kmodel a K210 can load")
    info = parse_kmodel(data, str(path))
    out = {"file": str(path), "sha256": hashlib.sha256(data).hexdigest(), **info.as_dict(),
           "maixpy_v3_v4": maixpy_load_error(data, (3, 4), str(path)) or "load"}
    if args.layers:
        out["layers"] = [layer.as_dict() for layer in describe(data, str(path))]
    print(json.dumps(out, indent=2))
    return 0


def cmd_make(args: argparse.Namespace) -> int:
    from hil.kmodel import build
    from hil.kmodel.fixtures import write_atomic
    main_mem = build.DEFAULT_MAIN_MEM if args.main_mem is None else args.main_mem
    maker = build.build_v3 if args.version == 3 else build.build_v4
    try:
        data = maker(args.size, main_mem, args.seed, args.kernel)
    except ValueError as exc:
        raise ConfigError(f"hil models make: {exc}") from None
    out = Path(args.output)
    try:
        write_atomic(out, data)
    except OSError as exc:
        raise ConfigError(f"{out}: cannot write: {exc.strerror}") from None
    print(f"{out}: kmodel v{args.version}, {len(data)} bytes, main_mem {main_mem}, "
          f"sha256 {hashlib.sha256(data).hexdigest()}")
    return 0
