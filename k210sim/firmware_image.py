"""Firmware images for the simulated board, and what the simulated boot ROM makes of flash 0.

An image is exactly what kflash 1.1.6 writes at flash 0 for a plain .bin (vowstar/kflash.py
v1.1.6 kflash.py, the firmware branch of flash_firmware): ``[flag u8][len u32 LE][payload]
[sha256(flag + len + payload)]``. Our payload is

    b"K210HIL-SIMFW\\0" + JSON {"build", "version", "build_date"} + b"\\0" + filler

naming one of the simulator's firmware builds (k210sim/builds), padded with deterministic filler
(SHAKE-256 of the build name) up to the build's ``image_size``
bytes, so a simulated build is as big as the real .bin and flashing it takes as long. The filler
never looks like a kmodel header at a 4 KiB boundary (kpu.load at an offset inside the firmware
must fail as on the real board).

The ROM's check (``boot_image``): a blank flash (0xFF), an impossible length or a wrong sha256
does not boot. Flag bit 0 (AES) images are refused: the simulator has no key (the real ROM
decrypts with the chip's key; UNCONFIRMED how it reacts to a wrong one). Flag bit 1 (DIO/QIO)
is ignored. A well-formed image whose payload is not one of ours also does not boot, with that
reason, since the simulator cannot run foreign code.
"""
from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from k210sim.builds import Build
    from k210sim.storage import FlashImage

MAGIC = b"K210HIL-SIMFW\0"
HEADER_SIZE = 5
DIGEST_SIZE = 32
FLAG_AES = 0x01
FLAG_DIO = 0x02
SECTOR = 4096


@dataclass(frozen=True)
class BootResult:
    ok: bool
    build: str | None = None        # firmware build named by the image
    version: str | None = None
    reason: str = ""                # why the ROM will not boot it ("" when ok)
    length: int | None = None       # payload length from the header


def _looks_like_kmodel(head: bytes) -> bool:
    if len(head) < 12:
        return False
    if head[:4] == b"LDMK":
        return True
    first, _, third = struct.unpack_from("<III", head)
    return first == 3 and third == 0


def make_payload(build: Build) -> bytes:
    meta = json.dumps({"build": build.name, "version": build.version,
                       "build_date": build.build_date}, sort_keys=True).encode()
    head = MAGIC + meta + b"\0"
    size = max(build.image_size, len(head))
    filler = bytearray(hashlib.shake_256(b"k210-hil filler " + build.name.encode()).digest(size - len(head)))
    payload = bytearray(head) + filler
    # Flash address of payload byte i is HEADER_SIZE + i; break any kmodel look-alike there.
    for addr in range(SECTOR, HEADER_SIZE + len(payload), SECTOR):
        i = addr - HEADER_SIZE
        if i >= len(head) and _looks_like_kmodel(bytes(payload[i:i + 12])):
            payload[i] ^= 0x80
    return bytes(payload)


def wrap(payload: bytes, flags: int = FLAG_DIO) -> bytes:
    """kflash's wrapper around any payload."""
    head = bytes([flags & 0xFF]) + struct.pack("<I", len(payload))
    return head + payload + hashlib.sha256(head + payload).digest()


def make_image(build: Build, flags: int = FLAG_DIO) -> bytes:
    """The image kflash 1.1.6 would write at flash 0 for this build's simulated .bin."""
    return wrap(make_payload(build), flags)


def parse_payload(payload: bytes) -> tuple[dict | None, str]:
    """(metadata, "") for one of our payloads, else (None, reason)."""
    if not payload.startswith(MAGIC):
        return None, "not a simulator firmware image (payload magic missing)"
    end = payload.find(b"\0", len(MAGIC))
    try:
        meta = json.loads(payload[len(MAGIC):end if end >= 0 else len(payload)])
    except ValueError:
        return None, "simulator firmware metadata is not valid JSON"
    if not isinstance(meta, dict) or not isinstance(meta.get("build"), str):
        return None, "simulator firmware metadata names no build"
    return meta, ""


def image_size(flash: FlashImage) -> int | None:
    """Bytes the wrapped image at flash 0 claims (header + payload + SHA-256), None if blank
    or impossible: what ``hil flash --addr`` must not overwrite."""
    head = flash.read(0, HEADER_SIZE)
    (length,) = struct.unpack("<I", head[1:])
    if head == b"\xff" * HEADER_SIZE or length == 0 or HEADER_SIZE + length + DIGEST_SIZE > flash.size:
        return None
    return HEADER_SIZE + length + DIGEST_SIZE


def boot_image(flash: FlashImage) -> BootResult:
    """What the boot ROM finds at flash 0 (see module docstring)."""
    head = flash.read(0, HEADER_SIZE)
    flags = head[0]
    (length,) = struct.unpack("<I", head[1:])
    if head == b"\xff" * HEADER_SIZE:
        return BootResult(False, reason="blank flash (no image at 0x0)")
    if length == 0 or HEADER_SIZE + length + DIGEST_SIZE > flash.size:
        return BootResult(False, reason=f"bad image length {length:#x}", length=length)
    payload = flash.read(HEADER_SIZE, length)
    digest = flash.read(HEADER_SIZE + length, DIGEST_SIZE)
    if hashlib.sha256(head + payload).digest() != digest:
        return BootResult(False, reason="image sha256 mismatch", length=length)
    if flags & FLAG_AES:
        return BootResult(False, reason="AES-encrypted image (the simulator has no key)", length=length)
    meta, why = parse_payload(payload)
    if meta is None:
        return BootResult(False, reason=why, length=length)
    return BootResult(True, build=meta["build"], version=meta.get("version"), length=length)
