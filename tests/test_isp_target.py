"""The simulated ROM and stub at the frame level: kflash's exact frames and every refusal."""
from __future__ import annotations

import hashlib
import struct
import sys
from pathlib import Path

import pytest

from hil.isp import slip
from hil.isp.packets import SHORT_FRAMES, Reason, RomOp, StubOp, build_request, parse_reply
from hil.isp.stub import SRAM_BASE, load_stub
from k210sim.isp.protocol import KNOWN_STUBS, StubInfo      # the chip side's table of stubs
from k210sim.isp.target import Sram, rom_divisor_baud

sys.path.insert(0, str(Path(__file__).parent))
from test_isp_fakes import loop_rig  # noqa: E402


class Wire:
    """Raw frames over a LoopPort: send a payload, get (op, reason) back or None."""

    def __init__(self, port) -> None:
        self.port = port
        self.dec = slip.SlipDecoder()
        self.frames: list[bytes] = []

    def send(self, payload: bytes) -> None:
        self.port.write(slip.encode(payload))

    def raw(self, frame: bytes) -> None:
        self.port.write(frame)

    def reply(self, timeout: float = 0.3):
        self.port.timeout = timeout
        while not self.frames:
            data = self.port.read(4096)
            if not data:
                return None
            self.frames += [f.payload for f in self.dec.feed(data)]
        r = parse_reply(self.frames.pop(0))
        return (r.op, r.reason)

    def ask(self, payload: bytes, timeout: float = 0.3):
        self.send(payload)
        return self.reply(timeout)


@pytest.fixture
def rom(tmp_path):
    with loop_rig(tmp_path) as rig:
        rig.enter_isp()
        assert rig.wait_mode("isp")["mode"] == "isp"
        yield rig, Wire(rig.port())


def _boot_stub(wire: Wire, stub: bytes) -> None:
    for off in range(0, len(stub), 1024):
        req = build_request(RomOp.MEMORY_WRITE, SRAM_BASE + off, stub[off:off + 1024])
        assert wire.ask(req) == (0xC3, 0xE0)
    wire.send(build_request(RomOp.MEMORY_BOOT, SRAM_BASE))
    assert wire.reply(0.2) is None            # the ROM does not answer a boot


def test_rom_answers_kflash_greeting_bytes(rom):
    _rig, w = rom
    w.raw(b"\xc0\xc2\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xc0")
    assert w.reply() == (0xC2, 0xE0)


def test_rom_refusals(rom):
    _rig, w = rom
    good = build_request(RomOp.MEMORY_WRITE, SRAM_BASE, b"abcd")
    bad_crc = good[:4] + b"\x00\x00\x00\x00" + good[8:]
    assert w.ask(bad_crc) == (0xC3, Reason.BAD_DATA_CHECKSUM)
    bad_len = build_request(RomOp.MEMORY_WRITE, SRAM_BASE, b"abcd", length=8)
    assert w.ask(bad_len) == (0xC3, Reason.BAD_DATA_LEN)
    assert w.ask(build_request(RomOp.MEMORY_WRITE, 0x1000, b"abcd")) == (0xC3, Reason.BAD_DATA_LEN)
    assert w.ask(build_request(RomOp.MEMORY_READ, SRAM_BASE, b"")) == (0xC4, Reason.INVALID_COMMAND)
    assert w.ask(SHORT_FRAMES[StubOp.NOP]) == (0xD2, Reason.BAD_DATA_LEN)   # a stub op in the ROM


def test_rom_stage0_baud_quirk(rom):
    rig, w = rom
    assert rom_divisor_baud(int(1500000 * 38.6 / 38)) == 1500000
    w.send(build_request(RomOp.CHANGE_BAUDRATE, 0, struct.pack("<I", int(1500000 * 38.6 / 38))))
    assert w.reply(0.2) is None
    assert rig.line.board_baud == 1500000


def test_foreign_sram_code_runs_silently(rom):
    rig, w = rom
    _boot_stub(w, b"\x6f\x00\x00\x00" * 300)
    assert w.ask(SHORT_FRAMES[StubOp.NOP]) is None
    assert w.ask(SHORT_FRAMES[RomOp.NOP]) is None
    boots = [e for e in rig.events.since(0) if e.get("what") == "boot-sram"]
    assert boots[-1]["stub"] is None and boots[-1]["size"] == 1200


def test_stub_protocol(rom):
    rig, w = rom
    _boot_stub(w, load_stub())
    assert w.ask(SHORT_FRAMES[StubOp.NOP]) == (0xD2, 0xE0)
    assert w.ask(build_request(StubOp.FLASH_WRITE, 0x300000, b"x")) == (0xD4, Reason.BAD_INIT)
    assert w.ask(build_request(StubOp.FLASH_INIT, 0, b"")) == (0xD7, Reason.BAD_INIT)   # in-chip SPI3
    assert w.ask(build_request(StubOp.FLASH_INIT, 1, b"")) == (0xD7, 0xE0)
    assert w.ask(build_request(StubOp.FLASH_WRITE, 0x300000, b"hello")) == (0xD4, 0xE0)
    assert rig.storage.flash.read(0x300000, 5) == b"hello"
    good = build_request(StubOp.FLASH_WRITE, 0x300000, b"HELLO")
    assert w.ask(good[:-1] + b"X") == (0xD4, Reason.BAD_DATA_CHECKSUM)
    assert rig.storage.flash.read(0x300000, 5) == b"hello"
    assert w.ask(build_request(StubOp.FLASH_WRITE, 0xFFFFF0, b"x" * 32)) == (0xD4, Reason.BAD_WRITE)
    erase = build_request(StubOp.FLASH_ERASE_NONBLOCKING, 0x300000, b"", length=4096)
    assert w.ask(erase) == (0xD8, 0xE0)
    assert w.ask(SHORT_FRAMES[StubOp.FLASH_STATUS]) == (0xD9, 0xE0)
    assert rig.storage.flash.read(0x300000, 5) == b"\xff" * 5
    unaligned = build_request(StubOp.FLASH_ERASE_NONBLOCKING, 0x300100, b"", length=4096)
    assert w.ask(unaligned) == (0xD8, Reason.BAD_ERASE)
    assert w.ask(build_request(0xDE, 0, b"")) == (0xDE, Reason.INVALID_COMMAND)
    # baud change: no reply, the board's UART follows at once
    w.send(build_request(StubOp.UARTHS_BAUDRATE_SET, 0, struct.pack("<I", 921600)))
    assert w.reply(0.2) is None and rig.line.board_baud == 921600
    w.port.baudrate = 921600
    assert w.ask(SHORT_FRAMES[StubOp.REBOOT]) == (0xD5, 0xE0)
    ev = rig.events.wait_for(lambda e: e["kind"] == "reset-request", timeout=2.0)
    assert ev["reason"] == "isp reboot"


def test_older_stub_has_no_reboot(rom, monkeypatch):
    rig, w = rom
    fake = b"older stub" * 100
    monkeypatch.setitem(KNOWN_STUBS, hashlib.sha256(fake).hexdigest(),
                        StubInfo("sipeed-0.8.3", len(fake), has_reboot=False, has_nonblocking_erase=False))
    _boot_stub(w, fake)
    assert w.ask(build_request(StubOp.FLASH_INIT, 1, b"")) == (0xD7, 0xE0)
    assert w.ask(SHORT_FRAMES[StubOp.REBOOT]) == (0xD5, Reason.INVALID_COMMAND)
    nonblocking = build_request(StubOp.FLASH_ERASE_NONBLOCKING, 0, b"", length=4096)
    assert w.ask(nonblocking) == (0xD8, Reason.INVALID_COMMAND)
    assert w.ask(build_request(StubOp.FLASH_ERASE, 0x300000, b"", length=4096)) == (0xD3, 0xE0)


def test_sram_spans():
    s = Sram()
    assert s.write(SRAM_BASE + 1024, b"b" * 1024) and s.write(SRAM_BASE, b"a" * 1024)
    assert s.image_at(SRAM_BASE) == b"a" * 1024 + b"b" * 1024
    assert not s.write(0x1000, b"x") and s.image_at(0x1000) == b""
    assert s.write(0x40000000 + 4096, b"c") and s.image_at(SRAM_BASE + 4096) == b"c"
