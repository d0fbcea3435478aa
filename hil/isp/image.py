"""Firmware images as the K210 boot ROM expects them, ``.kfpkg`` packages, and flash address checks.

Wrapped image (kflash 1.1.6 ``flash_firmware``, vowstar/kflash.py @ 550828c7 kflash.py l.1403), written at flash 0::

    [flag u8][payload length u32 LE][payload][SHA-256 of (flag + length + payload)]

flag bit0 = AES (never produced here), bit1 = DIO mode, set by default in kflash 1.1.6 (0x02).

A ``.kfpkg`` is a zip with ``flash-list.json``: ``{"version": ..., "files": [{"address": A,
"bin": NAME, "sha256Prefix": BOOL}]}``. kflash rewrites ``"address": X,`` into a string before
parsing, so it accepts unquoted hex; our reader does the same, and our writer emits the address
in exactly that form (``"address": 0x300000,``) so kflash reads it.

Model overlap rule (documented choice): a raw write at an address must not overlap the firmware
image. Over ISP we cannot read the flash back, so the caller states where the firmware ends:
either the image flashed in the same call (kfpkg or ``IspFlasher.flash_many``) or a
``firmware_end`` it knows (the rig's last flashed image); without either, only the flash bounds
are checked.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from hil.errors import ConfigError, IspError

FLAG_AES = 0x01
FLAG_DIO = 0x02
DEFAULT_FLAGS = FLAG_DIO          # kflash 1.1.6 default (-i dio)
WRAP_HEADER = 5
WRAP_TRAILER = 32
SECTOR = 4096
DEFAULT_FLASH_SIZE = 16 * 1024 * 1024


def wrap_firmware(payload: bytes, flags: int = DEFAULT_FLAGS) -> bytes:
    head = bytes((flags & 0xFF,)) + struct.pack("<I", len(payload)) + bytes(payload)
    return head + hashlib.sha256(head).digest()


def wrapped_size(payload_len: int) -> int:
    return WRAP_HEADER + payload_len + WRAP_TRAILER


@dataclass(frozen=True)
class UnwrappedImage:
    flags: int
    payload: bytes
    sha_ok: bool


def unwrap_firmware(image: bytes) -> UnwrappedImage | None:
    """Split a wrapped image; None when the length field does not fit the bytes given."""
    if len(image) < WRAP_HEADER + WRAP_TRAILER:
        return None
    (n,) = struct.unpack_from("<I", image, 1)
    end = WRAP_HEADER + n
    if end + WRAP_TRAILER > len(image):
        return None
    sha = image[end:end + WRAP_TRAILER]
    return UnwrappedImage(image[0], bytes(image[WRAP_HEADER:end]),
                          hashlib.sha256(image[:end]).digest() == sha)


def looks_wrapped(data: bytes) -> bool:
    """True if ``data`` is already a complete wrapped image (length and SHA-256 match)."""
    u = unwrap_firmware(data)
    return u is not None and u.sha_ok and wrapped_size(len(u.payload)) == len(data)


# --- address checks -----------------------------------------------------------------------

def check_region(addr: int, length: int, flash_size: int = DEFAULT_FLASH_SIZE, *,
                 what: str = "write", align: int = 1) -> None:
    """One-line IspError naming the address when [addr, addr+length) is not a valid region."""
    if addr < 0:
        raise IspError(f"{what} at {addr:#x}: negative flash address")
    if length <= 0:
        raise IspError(f"{what} at {addr:#010x}: nothing to write (length {length})")
    if align > 1 and addr % align:
        raise IspError(f"{what} at {addr:#010x}: address not aligned to {align // 1024} KiB")
    if addr + length > flash_size:
        raise IspError(f"{what} at {addr:#010x}: {length} bytes end at {addr + length:#010x}, "
                       f"past the end of the {flash_size // (1024 * 1024)} MiB flash")


def check_no_overlap(addr: int, length: int, firmware_end: int | None, *, what: str = "data") -> None:
    """A raw write must start at or after the end of the firmware image (see module doc)."""
    if firmware_end is None:
        return
    if addr < firmware_end:
        raise IspError(f"{what} at {addr:#010x} overlaps the firmware image at 0x00000000.."
                       f"{firmware_end:#010x}; choose an address >= {_round_up(firmware_end):#x}")


def _round_up(n: int, to: int = SECTOR) -> int:
    return (n + to - 1) // to * to


# --- kfpkg ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class KfpkgEntry:
    address: int
    name: str
    data: bytes
    sha256_prefix: bool     # True: wrapped as a firmware image; False: raw bytes at address

    def flash_bytes(self, flags: int = DEFAULT_FLAGS) -> bytes:
        return wrap_firmware(self.data, flags) if self.sha256_prefix else self.data


_ADDRESS_RE = re.compile(r'"address": (.*),')


def parse_flash_list(text: str, source: str = "flash-list.json") -> list[dict]:
    """flash-list.json as kflash reads it: unquoted ``"address": X,`` values become strings."""
    quoted = _ADDRESS_RE.sub(r'"address": "\1",', text)
    try:
        doc = json.loads(quoted)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not valid JSON (line {exc.lineno}): {exc.msg}") from None
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, list):
        raise ConfigError(f"{source}: no 'files' list")
    return files


def _parse_address(value: object, source: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip().strip('"'), 0)
        except ValueError:
            pass
    raise ConfigError(f"{source}: bad address {value!r}")


def read_kfpkg(path: str | Path) -> list[KfpkgEntry]:
    p = Path(path)
    try:
        zf = zipfile.ZipFile(p)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{p}: not a readable .kfpkg zip ({exc})") from None
    with zf:
        try:
            text = zf.read("flash-list.json").decode("utf-8")
        except KeyError:
            raise ConfigError(f"{p}: no flash-list.json in the package root") from None
        entries = []
        for i, f in enumerate(parse_flash_list(text, f"{p}:flash-list.json")):
            where = f"{p}:flash-list.json files[{i}]"
            if not isinstance(f, dict) or "bin" not in f or "address" not in f:
                raise ConfigError(f"{where}: needs 'address' and 'bin'")
            try:
                data = zf.read(f["bin"])
            except KeyError:
                raise ConfigError(f"{where}: {f['bin']!r} is not in the package") from None
            entries.append(KfpkgEntry(_parse_address(f["address"], where), f["bin"], data,
                                      bool(f.get("sha256Prefix", False))))
    return entries


def kfpkg_bytes(entries: list[KfpkgEntry], version: str = "0.1.0") -> bytes:
    """A .kfpkg that kflash 1.1.6 reads: addresses written unquoted in hex, one file per line."""
    lines = ['{', f'    "version": {json.dumps(version)},', '    "files": [']
    for i, e in enumerate(entries):
        tail = "," if i < len(entries) - 1 else ""
        lines += ['        {',
                  f'            "address": {e.address:#x},',
                  f'            "bin": {json.dumps(e.name)},',
                  f'            "sha256Prefix": {"true" if e.sha256_prefix else "false"}',
                  '        }' + tail]
    lines += ['    ]', '}', '']
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("flash-list.json", "\n".join(lines))
        for e in entries:
            zf.writestr(e.name, e.data)
    return buf.getvalue()


def write_kfpkg(path: str | Path, entries: list[KfpkgEntry], version: str = "0.1.0") -> Path:
    """Write atomically (temp file + rename): no half-written package that looks complete."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_bytes(kfpkg_bytes(entries, version))
    tmp.replace(p)
    return p
