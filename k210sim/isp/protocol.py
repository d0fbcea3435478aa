"""The K210 ISP wire format as the chip side reads and writes it.

SLIP framing (``C0`` + escaped payload + ``C0``; ``DB DC`` for C0, ``DB DD`` for DB), requests
``[u16 op][u16 0][u32 CRC-32 of bytes 8..][u32 address][u32 length][data]`` and replies
``[op][reason]``, as kflash 1.1.6 (vowstar/kflash.py v1.1.6 kflash.py) speaks them. kflash sends
a few requests as hard-coded 13-byte frames (CRC 0, the length field cut after one byte).
Known flash-mode stubs are recognised by the SHA-256 of the uploaded code.
"""
from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD
HEADER_SIZE = 16
SRAM_BASE = 0x80000000


class RomOp(IntEnum):
    ECHO = 0xC1
    NOP = 0xC2
    MEMORY_WRITE = 0xC3
    MEMORY_READ = 0xC4
    MEMORY_BOOT = 0xC5
    CHANGE_BAUDRATE = 0xC6
    DEBUG_INFO = 0xD1


class StubOp(IntEnum):
    DEBUG_INFO = 0xD1
    NOP = 0xD2
    FLASH_ERASE = 0xD3
    FLASH_WRITE = 0xD4
    REBOOT = 0xD5
    UARTHS_BAUDRATE_SET = 0xD6
    FLASH_INIT = 0xD7
    FLASH_ERASE_NONBLOCKING = 0xD8
    FLASH_STATUS = 0xD9


class Reason(IntEnum):
    DEFAULT = 0x00
    OK = 0xE0
    BAD_DATA_LEN = 0xE1
    BAD_DATA_CHECKSUM = 0xE2
    INVALID_COMMAND = 0xE3
    BAD_INIT = 0xE4
    BAD_ERASE = 0xE5
    BAD_WRITE = 0xE6
    FLASH_BUSY = 0xE7


def encode(payload: bytes) -> bytes:
    return b"\xc0" + bytes(payload).replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


@dataclass(frozen=True)
class Frame:
    payload: bytes
    damaged: bool = False


class SlipDecoder:
    """Incremental: ``feed(data)`` returns the frames ``data`` completes; noise between frames is
    dropped, an empty C0 C0 is a start marker, a bad escape marks the frame damaged."""

    def __init__(self, max_frame: int = 1 << 20) -> None:
        self._buf = bytearray()
        self._in = False
        self._esc = False
        self._damaged = False
        self._max = max_frame

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        for b in data:
            if not self._in:
                if b == END:
                    self._in = True
                continue
            if self._esc:
                self._esc = False
                if b == ESC_END:
                    self._buf.append(END)
                elif b == ESC_ESC:
                    self._buf.append(ESC)
                else:
                    self._damaged = True
                    if b == END:
                        self._finish(frames)
                    else:
                        self._buf.append(b)
                continue
            if b == ESC:
                self._esc = True
            elif b == END:
                self._finish(frames)
            else:
                self._buf.append(b)
                if len(self._buf) > self._max:
                    self._buf.clear()
                    self._in = False
        return frames

    def _finish(self, frames: list[Frame]) -> None:
        if self._buf or self._damaged:
            frames.append(Frame(bytes(self._buf), self._damaged))
            self._in = False
        self._buf.clear()
        self._damaged = False


@dataclass(frozen=True)
class Request:
    op: int
    crc: int
    address: int
    length: int
    data: bytes
    short: bool = False
    crc_ok: bool = True
    length_ok: bool = True


def parse_request(payload: bytes) -> Request | None:
    if len(payload) < 12:
        return None
    op, _reserved, crc, address = struct.unpack_from("<HHII", payload, 0)
    if len(payload) < HEADER_SIZE:
        return Request(op, crc, address, 0, b"", short=True, crc_ok=False)
    (length,) = struct.unpack_from("<I", payload, 12)
    data = payload[HEADER_SIZE:]
    return Request(op, crc, address, length, data, crc_ok=(zlib.crc32(payload[8:]) & 0xFFFFFFFF) == crc,
                   length_ok=length == len(data))


def build_reply(op: int, reason: int) -> bytes:
    return bytes((op & 0xFF, reason & 0xFF))


@dataclass(frozen=True)
class StubInfo:
    name: str
    size: int
    has_reboot: bool
    has_nonblocking_erase: bool


KNOWN_STUBS: dict[str, StubInfo] = {
    # the ISP_PROG literal of kflash 1.1.6 (PyPI; vowstar/kflash.py v1.1.6), decompressed
    "757776d0055048262ef92bd04a9f8cbad13647ec4f5c1f59494489a88d571129":
        StubInfo("kflash-1.1.6", 16512, has_reboot=True, has_nonblocking_erase=True),
    # sipeed/kflash.py master 7307f75 (self-reported 0.8.3)
    "03837e34ba96e603011ab741844b5f8d2e44c6bdf58ae643c9e1fd15efafccea":
        StubInfo("sipeed-0.8.3", 29824, has_reboot=False, has_nonblocking_erase=False),
}


def identify(code: bytes) -> StubInfo | None:
    return KNOWN_STUBS.get(hashlib.sha256(code).hexdigest())
