"""K210 ISP request and reply packets (kflash 1.1.6: vowstar/kflash.py @ 550828c7 kflash.py,
ISPResponse l.452, FlashModeResponse l.494, the request packing in MAIXLoader).

Request (host to board), little-endian::

    0  u16 op | 2 u16 reserved=0 | 4 u32 CRC-32 of bytes 8.. | 8 u32 address | 12 u32 length | 16 data

Reply (board to host): ``[op u8][reason u8][text...]``; text is meaningful for ISP_DEBUG_INFO only.

kflash sends a few requests as hard-coded frames with CRC 0 whose payload stops after the first
byte of the length field: 13 bytes, 15 on the wire with the two C0 (NOP greetings, flash status,
reboot; kflash 1.1.6's literals carry op + 12 zero bytes).
``parse_request`` accepts them, and ``SHORT_FRAMES`` lets the client send them byte-for-byte.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

HEADER = struct.Struct("<HHIII")   # op, reserved, crc, address, length
HEADER_SIZE = HEADER.size          # 16
SHORT_FRAME_SIZE = 13              # kflash's hard-coded frames (15 bytes with the two C0)


class RomOp(IntEnum):
    """Boot ROM ISP opcodes (kflash ``ISPResponse.ISPOperation``)."""
    ECHO = 0xC1
    NOP = 0xC2
    MEMORY_WRITE = 0xC3
    MEMORY_READ = 0xC4
    MEMORY_BOOT = 0xC5
    CHANGE_BAUDRATE = 0xC6
    DEBUG_INFO = 0xD1


class StubOp(IntEnum):
    """Flash-mode stub opcodes (kflash ``FlashModeResponse.Operation``)."""
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
    """Reply reason codes (kflash 1.1.6 ``FlashModeResponse.ErrorCode``; the ROM uses 0x00-0xE3)."""
    DEFAULT = 0x00
    OK = 0xE0
    BAD_DATA_LEN = 0xE1
    BAD_DATA_CHECKSUM = 0xE2
    INVALID_COMMAND = 0xE3
    BAD_INIT = 0xE4
    BAD_ERASE = 0xE5
    BAD_WRITE = 0xE6
    FLASH_BUSY = 0xE7


REASON_TEXT = {
    Reason.DEFAULT: "default",
    Reason.OK: "ok",
    Reason.BAD_DATA_LEN: "bad data len",
    Reason.BAD_DATA_CHECKSUM: "bad data checksum",
    Reason.INVALID_COMMAND: "invalid command",
    Reason.BAD_INIT: "bad initialization",
    Reason.BAD_ERASE: "bad flash erase",
    Reason.BAD_WRITE: "bad flash write",
    Reason.FLASH_BUSY: "flash is busy",
}


def op_name(op: int) -> str:
    for enum in (RomOp, StubOp):
        try:
            return f"{enum(op).name} {op:#04x}"
        except ValueError:
            pass
    return f"{op:#04x}"


def reason_name(reason: int) -> str:
    try:
        return f"{Reason(reason).name} {reason:#04x} ({REASON_TEXT[Reason(reason)]})"
    except ValueError:
        return f"{reason:#04x} (unknown error)"


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def build_request(op: int, address: int = 0, data: bytes = b"", length: int | None = None) -> bytes:
    """The unescaped request payload. ``length`` defaults to ``len(data)``."""
    if length is None:
        length = len(data)
    body = struct.pack("<II", address & 0xFFFFFFFF, length) + bytes(data)
    return struct.pack("<HHI", op, 0, crc32(body)) + body


def build_u32_request(op: int, value: int) -> bytes:
    """Requests carrying one u32 parameter in the data (baud changes: address 0, length 4)."""
    return build_request(op, 0, struct.pack("<I", value))


# kflash's hard-coded frames, unescaped payloads (CRC 0, one byte of the length field).
SHORT_FRAMES = {
    RomOp.NOP: bytes((RomOp.NOP,)) + bytes(12),
    StubOp.NOP: bytes((StubOp.NOP,)) + bytes(12),
    StubOp.FLASH_STATUS: bytes((StubOp.FLASH_STATUS,)) + bytes(12),
    StubOp.REBOOT: bytes((StubOp.REBOOT,)) + bytes(12),
}


@dataclass(frozen=True)
class Request:
    op: int
    crc: int
    address: int
    length: int                 # the length field as sent (0 for short frames)
    data: bytes
    short: bool = False         # kflash's 13-byte hard-coded frame
    crc_ok: bool = True         # CRC-32 over bytes 8.. matches (always False for short frames)
    length_ok: bool = True      # length field == len(data)


def parse_request(payload: bytes) -> Request | None:
    """Decode one request payload; None when it is too short to carry an opcode and address."""
    if len(payload) < 12:
        return None
    op, _reserved, crc, address = struct.unpack_from("<HHII", payload, 0)
    if len(payload) < HEADER_SIZE:
        # kflash's short frames: 13 bytes, length field truncated. Nothing to checksum.
        return Request(op, crc, address, 0, b"", short=True, crc_ok=False, length_ok=True)
    (length,) = struct.unpack_from("<I", payload, 12)
    data = payload[HEADER_SIZE:]
    return Request(op, crc, address, length, data, short=False,
                   crc_ok=crc32(payload[8:]) == crc, length_ok=length == len(data))


@dataclass(frozen=True)
class Reply:
    op: int
    reason: int
    text: str = ""

    @property
    def ok(self) -> bool:
        return self.reason in (Reason.OK, Reason.DEFAULT)

    def describe(self) -> str:
        t = f" text {self.text!r}" if self.text else ""
        return f"op {op_name(self.op)} reason {reason_name(self.reason)}{t}"


def build_reply(op: int, reason: int, text: bytes = b"") -> bytes:
    return bytes((op & 0xFF, reason & 0xFF)) + text


def parse_reply(payload: bytes) -> Reply | None:
    """None for a payload too short to carry op and reason (kflash: 'data null')."""
    if len(payload) < 2:
        return None
    text = ""
    if payload[0] == RomOp.DEBUG_INFO and len(payload) > 2:
        text = payload[2:].decode("utf-8", "replace")
    return Reply(payload[0], payload[1], text)
