"""`hil sim firmware --profile P -o FILE`: firmware builds for the simulated board.

``FILE.bin`` (default): the *payload*, i.e. the .bin as a build would produce it; kflash and
``hil flash`` wrap it (flag, length, SHA-256) when writing it at flash 0. After flashing it the
simulated board boots that profile.
``--wrapped``: the wrapped image as it lands at flash 0 (``hil flash`` writes it as is).
``FILE.kfpkg``: a kflash package with the firmware at 0 plus ``--add ADDR:FILE`` raw entries
(e.g. a kmodel at 0x300000), its flash-list.json written so kflash 1.1.6 reads it.
``--corrupt``: the image's SHA-256 no longer matches (one payload byte flipped after hashing);
the ROM refuses to boot it. Only with ``--wrapped`` or a .kfpkg (a payload gets a fresh hash
from whoever wraps it).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from hil.errors import ConfigError


def _corrupt(image: bytes) -> bytes:
    b = bytearray(image)
    b[5 + 64] ^= 0xFF      # a payload byte past the metadata; the trailing SHA-256 is kept
    return bytes(b)


def _parse_add(spec: str) -> tuple[int, Path]:
    addr, sep, path = spec.partition(":")
    if not sep or not path:
        raise ConfigError(f"--add {spec!r}: expected ADDR:FILE, e.g. 0x300000:model.kmodel")
    try:
        value = int(addr, 0)
    except ValueError:
        raise ConfigError(f"--add {spec!r}: bad address {addr!r}") from None
    return value, Path(path)


def build(profile_name: str, out: Path, wrapped: bool = False, corrupt: bool = False,
          add: list[str] | None = None) -> Path:
    from hil.firmware import load_profile
    from hil.isp.image import KfpkgEntry, check_no_overlap, check_region, write_kfpkg
    from hil.sim.firmware_image import make_image, make_payload

    profile = load_profile(profile_name)
    kfpkg = out.suffix == ".kfpkg"
    if corrupt and not (wrapped or kfpkg):
        raise ConfigError("--corrupt needs --wrapped or a .kfpkg output: kflash re-hashes a payload")
    if add and not kfpkg:
        raise ConfigError(f"--add needs a .kfpkg output, not {out}")
    if kfpkg:
        image = make_image(profile)
        if corrupt:
            entries = [KfpkgEntry(0, "firmware.img", _corrupt(image), False)]
        else:
            entries = [KfpkgEntry(0, "firmware.bin", make_payload(profile), True)]
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
    data = make_image(profile) if wrapped else make_payload(profile)
    if corrupt:
        data = _corrupt(data)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    return out


def register(sim_sub) -> None:
    p = sim_sub.add_parser(
        "firmware", help="write a simulated firmware build (.bin payload, wrapped image or .kfpkg)",
        description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", required=True, help="firmware profile (rigs/firmware/NAME.toml)")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="FILE",
                   help="output file: .bin payload (default), or .kfpkg package")
    p.add_argument("--wrapped", action="store_true", help="write the wrapped image kflash puts at flash 0")
    p.add_argument("--corrupt", action="store_true",
                   help="break the image's SHA-256 (a build that must not boot)")
    p.add_argument("--add", action="append", metavar="ADDR:FILE",
                   help="(.kfpkg) also write FILE raw at ADDR, e.g. 0x300000:m.kmodel; repeatable")

    def run(args: argparse.Namespace) -> int:
        out = build(args.profile, args.output, args.wrapped, args.corrupt, args.add)
        print(f"{out}: {out.stat().st_size} bytes ({args.profile})")
        return 0

    p.set_defaults(func=run)
