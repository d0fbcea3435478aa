"""The simulated K210's ISP: the boot ROM's UART ISP and, once booted from SRAM, the flash-mode stub.

Speaks exactly what kflash 1.1.6 speaks (vowstar/kflash.py v1.1.6 kflash.py). Choices where kflash's code is
UNCONFIRMED, all kept here:

- Replies are ``[op][reason]`` with no text; they never need SLIP escapes (kflash's reader
  mishandles escapes). The ROM answers NOP with ``C2 E0``.
- kflash's hard-coded short frames (13-byte payload: CRC 0, length field cut to 1 byte) are
  accepted for the ops kflash sends that way (ROM NOP, stub NOP, FLASH_STATUS, REBOOT); any
  other op in a short frame is answered BAD_DATA_LEN. Full frames are CRC-checked (BAD_DATA_CHECKSUM) and length-checked
  (BAD_DATA_LEN) before anything else.
- ISP_MEMORY_WRITE accepts the 8 MiB of SRAM at 0x80000000 (and its 0x40000000 alias); other
  addresses get BAD_DATA_LEN. ISP_MEMORY_READ and ECHO answer INVALID_COMMAND.
- ISP_MEMORY_BOOT and both baud commands (ROM 0xC6, stub 0xD6) get no reply: kflash reads none.
  The ROM's 0xC6 value carries kflash's 38.6/38 divisor quirk, so the UART runs at
  ``round(value * 38 / 38.6)`` (1523684 -> 1500000). The stub's 0xD6 value is the baud itself.
- Booting SRAM: the code runs as the flash-mode stub only when the bytes uploaded from the boot
  address are one of the stubs in ``k210sim.isp.protocol.KNOWN_STUBS`` (kflash 1.1.6, sipeed 0.8.3,
  matched by SHA-256); any other code "runs" silently (it prints nothing we can model). The stub
  starts at 115200 baud.
- The stub needs ISP_FLASH_INIT first (else BAD_INIT); chip 1 (on-board SPI0) is the board's
  flash, chip 0 (in-chip SPI3) is answered BAD_INIT: the modelled boards have no second flash.
- ISP_FLASH_WRITE replaces the bytes (the stub erases and programs read-modify-write); a write
  past the end of flash is BAD_WRITE. Erases must be 4 KiB-aligned (else BAD_ERASE);
  address 0 / length 0 is a chip erase. Erases finish at once (FLASH_STATUS says OK).
- The sipeed 0.8.3 stub has no REBOOT and no non-blocking erase: those ops get INVALID_COMMAND.
- REBOOT: reply, drain the UART, wait REBOOT_DELAY_S, then ``ctx.request_reset("isp reboot")``;
  the board samples BOOT as on any reset. The delay before the stub's reset is unknown; 0.1 s
  lets kflash close its port first (a tty's HUPCL drops DTR/RTS, which the modem shim forwards),
  which is why kflash 1.1.6, which leaves BOOT asserted, still boots the new firmware.

``IspFaults`` holds test-only misbehaviour (a silent ROM, bad-checksum or busy replies, a board
that stops answering mid-write); pass it to the constructor, arm it through the control socket
(``{"cmd": "fault", "name": "isp_silent"}`` sets ``ctx.faults.isp``, read at each ISP boot), or
set ``IspTarget.test_faults`` for boards built by the default program factory. Flash write
errors come from ``ctx.faults.flash_write`` (the "flash_write_error" fault): a failed write or
erase is answered BAD_WRITE / BAD_ERASE.
"""
from __future__ import annotations

import struct
import threading
from dataclasses import dataclass
from typing import ClassVar

from k210sim.isp.protocol import (SRAM_BASE, Reason, Request, RomOp, SlipDecoder, StubInfo, StubOp,
                                   build_reply, encode, identify, parse_request)
from k210sim.program import SimContext

SRAM_SIZE = 8 * 1024 * 1024            # 6 MiB general + 2 MiB AI SRAM
SRAM_UNCACHED = 0x40000000             # the same SRAM without the cache
DEFAULT_BAUD = 115200
SECTOR = 4096
REBOOT_DELAY_S = 0.1
SHORT_OK_ROM = (RomOp.NOP,)
SHORT_OK_STUB = (StubOp.NOP, StubOp.FLASH_STATUS, StubOp.REBOOT)
# Ops whose length field is a parameter (the erase length), not the size of the data.
LENGTH_IS_PARAMETER = (StubOp.FLASH_ERASE, StubOp.FLASH_ERASE_NONBLOCKING)


def rom_divisor_baud(value: int) -> int:
    """The baud the ROM's UART really runs at for a 0xC6 value (kflash's goE quirk, inverted)."""
    return round(value * 38 / 38.6)


@dataclass
class IspFaults:
    """Test-only misbehaviour of the simulated ISP (all off by default)."""
    rom_silent: bool = False               # the ROM never answers: a board that never greets
    stub_silent: bool = False              # the booted stub never answers
    write_reason: int | None = None        # answer every flash write with this reason (0xE2...)
    silent_after_writes: int | None = None  # stop answering after this many flash writes
    write_busy_replies: int = 0            # answer the first N flash writes "busy" (not applied)
    erase_busy_polls: int = 0              # answer the first N status polls after an erase "busy"
    ignore_rom_baud: bool = False          # the ROM stays at its baud after 0xC6
    ignore_stub_baud: bool = False         # the stub stays at its baud after 0xD6


class Sram:
    """The 8 MiB SRAM the ROM loads code into; tracks which ranges were written."""

    def __init__(self) -> None:
        self._mem: bytearray | None = None    # allocated on first write
        self._spans: list[tuple[int, int]] = []   # merged [start, end) offsets written

    @staticmethod
    def offset(addr: int) -> int | None:
        for base in (SRAM_BASE, SRAM_UNCACHED):
            if base <= addr < base + SRAM_SIZE:
                return addr - base
        return None

    def write(self, addr: int, data: bytes) -> bool:
        off = self.offset(addr)
        if off is None or off + len(data) > SRAM_SIZE:
            return False
        if self._mem is None:
            self._mem = bytearray(SRAM_SIZE)
        self._mem[off:off + len(data)] = data
        self._add_span(off, off + len(data))
        return True

    def _add_span(self, start: int, end: int) -> None:
        spans = sorted(self._spans + [(start, end)])
        merged: list[tuple[int, int]] = []
        for s, e in spans:
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        self._spans = merged

    def image_at(self, addr: int) -> bytes:
        """The bytes written contiguously from ``addr`` (what a boot from there would run)."""
        off = self.offset(addr)
        if off is None or self._mem is None:
            return b""
        for s, e in self._spans:
            if s <= off < e:
                return bytes(self._mem[off:e])
        return b""


class IspTarget:
    """SimProgram for a boot with BOOT held low: the ROM's ISP, then the flash-mode stub."""

    test_faults: ClassVar[IspFaults | None] = None

    def __init__(self, ctx: SimContext, faults: IspFaults | None = None) -> None:
        self.ctx = ctx
        self.uart = ctx.uart
        self.flash = ctx.storage.flash
        self.faults = faults or getattr(ctx.faults, "isp", None) or IspTarget.test_faults or IspFaults()
        self.mode = "rom"                 # "rom" | "stub" | "user" (silent SRAM code)
        self.stub: StubInfo | None = None
        self.sram = Sram()
        self._stop = threading.Event()
        self._flash_ready = False
        self._writes = 0
        self._busy_writes = self.faults.write_busy_replies
        self._busy_polls = 0

    # --- SimProgram ---------------------------------------------------------------------------

    def run(self) -> None:
        decoder = SlipDecoder()
        while not self._stop.is_set():
            data = self.uart.read(65536, timeout=0.2)
            if not data or self.mode == "user":
                continue
            for frame in decoder.feed(data):
                if frame.damaged:
                    continue
                req = parse_request(frame.payload)
                if req is None:
                    continue
                if self.mode == "rom":
                    self._rom(req)
                elif self.mode == "stub":
                    self._stub(req)
                if self._stop.is_set() or self.mode == "user":
                    break

    def halt(self) -> None:
        self._stop.set()

    # --- helpers ------------------------------------------------------------------------------

    def _reply(self, op: int, reason: int) -> None:
        self.uart.write(encode(build_reply(op, reason)))

    def _event(self, what: str, **fields) -> None:
        self.ctx.events.emit("isp", what=what, **fields)

    def _check(self, req: Request, short_ok: tuple[int, ...]) -> int | None:
        """A reason to refuse the frame before looking at its op, or None."""
        if req.short:
            return None if req.op in short_ok else Reason.BAD_DATA_LEN
        if not req.crc_ok:
            return Reason.BAD_DATA_CHECKSUM
        if not req.length_ok and req.op not in LENGTH_IS_PARAMETER:
            return Reason.BAD_DATA_LEN
        return None

    # --- ROM ----------------------------------------------------------------------------------

    def _rom(self, req: Request) -> None:
        if self.faults.rom_silent:
            return
        bad = self._check(req, SHORT_OK_ROM)
        op = req.op
        if bad is not None:
            if op not in (RomOp.MEMORY_BOOT, RomOp.CHANGE_BAUDRATE):
                self._reply(op, bad)
            return
        if op == RomOp.NOP:
            self._reply(op, Reason.OK)
        elif op == RomOp.MEMORY_WRITE:
            ok = self.sram.write(req.address, req.data)
            self._reply(op, Reason.OK if ok else Reason.BAD_DATA_LEN)
        elif op == RomOp.MEMORY_BOOT:
            self._boot_sram(req.address)
        elif op == RomOp.CHANGE_BAUDRATE and len(req.data) >= 4:
            (value,) = struct.unpack_from("<I", req.data)
            baud = rom_divisor_baud(value)
            if not self.faults.ignore_rom_baud:
                self.uart.set_baud(baud)
            self._event("rom-baud", value=value, baud=baud)
        else:
            self._reply(op, Reason.INVALID_COMMAND)

    def _boot_sram(self, addr: int) -> None:
        code = self.sram.image_at(addr)
        info = identify(code)
        self._event("boot-sram", address=addr, size=len(code), stub=info.name if info else None)
        self.uart.set_baud(DEFAULT_BAUD)
        if info is None:
            self.mode = "user"        # foreign code: runs, prints nothing we can model
            return
        self.stub = info
        self.mode = "stub"
        self.uart.discard_input()

    # --- flash-mode stub ----------------------------------------------------------------------

    def _stub(self, req: Request) -> None:
        f = self.faults
        if f.stub_silent:
            return
        if f.silent_after_writes is not None and self._writes >= f.silent_after_writes:
            return
        op = req.op
        bad = self._check(req, SHORT_OK_STUB)
        if bad is not None:
            if op != StubOp.UARTHS_BAUDRATE_SET:
                self._reply(op, bad)
            return
        stub = self.stub
        if op == StubOp.NOP:
            self._reply(op, Reason.OK)
        elif op == StubOp.UARTHS_BAUDRATE_SET and len(req.data) >= 4:
            (baud,) = struct.unpack_from("<I", req.data)
            if baud > 0 and not f.ignore_stub_baud:
                self.uart.set_baud(baud)
                self._event("stub-baud", baud=baud)
        elif op == StubOp.FLASH_INIT:
            self._flash_ready = req.address == 1
            self._reply(op, Reason.OK if self._flash_ready else Reason.BAD_INIT)
        elif op == StubOp.FLASH_WRITE:
            self._write(req)
        elif op == StubOp.FLASH_ERASE or (op == StubOp.FLASH_ERASE_NONBLOCKING
                                          and stub is not None and stub.has_nonblocking_erase):
            self._erase(req)
        elif op == StubOp.FLASH_STATUS and stub is not None and stub.has_nonblocking_erase:
            if self._busy_polls > 0:
                self._busy_polls -= 1
                self._reply(op, Reason.FLASH_BUSY)
            else:
                self._reply(op, Reason.OK)
        elif op == StubOp.REBOOT and stub is not None and stub.has_reboot:
            self._reply(op, Reason.OK)
            self.uart.flush()
            self._event("reboot")
            if self._stop.wait(REBOOT_DELAY_S):
                return
            self._stop.set()
            self.ctx.request_reset("isp reboot")
        else:
            self._reply(op, Reason.INVALID_COMMAND)

    def _write(self, req: Request) -> None:
        op = StubOp.FLASH_WRITE
        if not self._flash_ready:
            self._reply(op, Reason.BAD_INIT)
            return
        if self._busy_writes > 0:
            self._busy_writes -= 1
            self._reply(op, Reason.FLASH_BUSY)
            return
        self._writes += 1
        if self.faults.write_reason is not None:
            self._reply(op, self.faults.write_reason)
            return
        if req.address + len(req.data) > self.flash.size:
            self._reply(op, Reason.BAD_WRITE)
            return
        try:
            self.flash.write(req.address, req.data)
        except Exception as exc:  # noqa: BLE001 - an injected flash fault or a disk error
            self._event("write-failed", address=req.address, size=len(req.data), error=str(exc))
            self._reply(op, Reason.BAD_WRITE)
            return
        self._event("flash-write", address=req.address, size=len(req.data))
        if self.faults.silent_after_writes is not None and self._writes >= self.faults.silent_after_writes:
            return        # the write happened; the reply never comes
        self._reply(op, Reason.OK)

    def _erase(self, req: Request) -> None:
        op = req.op
        if not self._flash_ready:
            self._reply(op, Reason.BAD_INIT)
            return
        addr, length = req.address, req.length
        if addr == 0 and length == 0:
            length = self.flash.size            # chip erase
        if addr % SECTOR or length % SECTOR or addr + length > self.flash.size:
            self._reply(op, Reason.BAD_ERASE)
            return
        try:
            self.flash.erase(addr, length)
        except Exception as exc:  # noqa: BLE001
            self._event("erase-failed", address=addr, size=length, error=str(exc))
            self._reply(op, Reason.BAD_ERASE)
            return
        self._event("flash-erase", address=addr, size=length)
        self._busy_polls = self.faults.erase_busy_polls
        self._reply(op, Reason.OK)
