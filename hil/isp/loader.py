"""One ISP session on an open serial port: the ROM stage and the flash-mode stub stage.

Unlike kflash, every wait here is bounded and every give-up is an ``IspError`` that names the
stage, the opcode, the address and the last reply seen. Retry limits are per request; a busy
board is waited for up to a time budget, never forever.

The port is anything with pyserial's ``write``, ``read``, ``in_waiting``, ``timeout``,
``baudrate``, ``dtr``/``rts`` and ``reset_input_buffer`` (pyserial ``Serial``, an
``rfc2217://`` or ``socket://`` URL object, or a test fake).
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from hil.boards import SEQUENCES, STEP_PAUSE_S, BoardSpec
from hil.errors import IspError
from hil.isp import slip
from hil.isp.packets import (SHORT_FRAMES, Reason, Reply, RomOp, StubOp, build_request,
                             build_u32_request, op_name, parse_reply)
from hil.isp.stub import SRAM_BASE

Log = Callable[[str], None]
Progress = Callable[[str, int, int], None]

ROM_CHUNK = 1024                 # kflash's ISP_MEMORY_WRITE frame size
FLASH_CHUNK = 65536              # kflash's ISP_FLASH_WRITE frame size (16 sectors)
STAGE0_BAUD = 1500000            # the only stage-0 (ROM) fast baud kflash uses
STAGE0_BOARDS = ("goE", "maixduino", "trainer")   # kflash -B values that get ROM 0xC6
STUB_BOOT_WAIT_S = 0.1           # kflash waits this long for the stub to start
GREET_POLL_S = 0.05              # re-send a greeting this often while waiting for the chip
BOOT_FRAME_SETTLE_S = 0.02       # after ISP_MEMORY_BOOT, before the host port changes baud


def stage0_divisor_value(baud: int = STAGE0_BAUD) -> int:
    """kflash's goE/trainer quirk: the ROM's UART clock needs the requested value scaled by 38.6/38."""
    return int(baud * 38.6 / 38)


@dataclass(frozen=True)
class Timeouts:
    greet: float = 0.5           # ROM greeting reply (kflash: 0.5 s)
    reply: float = 1.0           # any other short request (kflash: 3 s)
    write_extra: float = 5.0     # flash write reply: line time of the frame + this (kflash: 90 s)
    busy_budget: float = 30.0    # total time a write/reboot may be answered "flash is busy"
    erase_base: float = 10.0     # erase: this + erase_per_block per 64 KiB (chip erase ~100 s max)
    erase_per_block: float = 0.4


@dataclass(frozen=True)
class Retries:
    greet_rounds: int = 3        # reset + ROM greeting rounds (kflash: 15)
    greets_per_round: int = 2
    rom_write: int = 3           # per 1 KiB SRAM chunk
    stub_greet: int = 10         # kflash MAX_RETRY_TIMES
    request: int = 3             # init, erase, reboot
    flash_write: int = 3         # per 64 KiB chunk (timeouts and checksum errors together)


class IspSession:
    """Requests and replies on one port, every wait bounded; keeps the last reply for errors."""

    def __init__(self, port, board: BoardSpec, *, name: str = "", log: Log | None = None,
                 timeouts: Timeouts = Timeouts(), retries: Retries = Retries()) -> None:
        self.port = port
        self.board = board
        self.name = name or str(getattr(port, "port", None) or getattr(port, "name", "") or "port")
        self.log = log or (lambda msg: None)
        self.timeouts = timeouts
        self.retries = retries
        self._decoder = slip.SlipDecoder()
        self._frames: deque[slip.Frame] = deque()
        self.last_reply: Reply | None = None
        self.lines_work: bool | None = None    # None: not tried yet

    # --- raw I/O ----------------------------------------------------------------------------

    def _error(self, stage: str, op: int, address: int, what: str) -> IspError:
        last = self.last_reply.describe() if self.last_reply else "none"
        return IspError(f"ISP {stage} on {self.name} ({self.board.name}): {op_name(op)} at "
                        f"{address:#010x}: {what}; last reply: {last}")

    def send(self, payload: bytes) -> None:
        self.port.write(slip.encode(payload))

    def send_short(self, op: int) -> None:
        """kflash's hard-coded short frame, byte for byte."""
        self.port.write(b"\xc0" + SHORT_FRAMES[op] + b"\xc0")

    def drain(self) -> None:
        """Forget anything received so far (stale replies of a request we gave up on).

        Only on error paths: on an rfc2217:// port a purge waits for the server's acknowledgement."""
        self._frames.clear()
        self._decoder.reset()
        try:
            self.port.reset_input_buffer()
        except Exception:   # noqa: BLE001 - some URL handlers lack it; the decoder reset is enough
            pass

    def _flush(self) -> None:
        flush = getattr(self.port, "flush", None)
        if flush:
            try:
                flush()
            except Exception:  # noqa: BLE001 - best effort: only shortens the wait before a switch
                pass

    def recv(self, timeout: float) -> tuple[Reply | None, bytes | None]:
        """(reply, raw payload) of the next frame, or (None, None) when nothing came in time.

        A frame too short to parse or with a broken escape gives (None, payload)."""
        deadline = time.monotonic() + timeout
        while not self._frames:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, None
            # The port's own timeout (set once at open: changing it on an rfc2217:// port costs a
            # round trip) bounds each read; the deadline bounds the whole wait.
            data = self.port.read(1)
            if not data:
                continue
            waiting = getattr(self.port, "in_waiting", 0) or 0
            if waiting:
                data += self.port.read(waiting)
            self._frames.extend(self._decoder.feed(data))
        frame = self._frames.popleft()
        reply = None if frame.damaged else parse_reply(frame.payload)
        if reply is not None:
            self.last_reply = reply
        return reply, frame.payload

    def set_baud(self, baud: int) -> None:
        if self.port.baudrate != baud:        # each change is a round trip on rfc2217://
            self.port.baudrate = baud

    # --- modem lines ------------------------------------------------------------------------

    def run_sequence(self, key: str) -> bool:
        """Drive DTR/RTS through ``SEQUENCES[key]``; False (and lines_work=False) if the port
        cannot set modem lines (a pty answers ENOTTY)."""
        try:
            for first, v1, second, v2 in SEQUENCES[key]:
                self._set_pair(first, v1, second, v2)
                time.sleep(STEP_PAUSE_S)
        except Exception as exc:  # noqa: BLE001 - OSError (ENOTTY), SerialException, URL handlers
            self.lines_work = False
            self.log(f"cannot drive DTR/RTS on {self.name}: {exc}")
            return False
        self.lines_work = True
        return True

    def _set_pair(self, first: str, v1: bool, second: str, v2: bool) -> None:
        """Two line changes as close together as the port allows.

        The chip samples BOOT an RC delay (milliseconds) after RESET is released, so the two
        changes of a step must land within it. pyserial's rfc2217:// setters each wait >= 50 ms
        for the server's acknowledgement; there we send both requests back to back and let the
        step pause cover the acknowledgements."""
        opts = getattr(self.port, "_rfc2217_options", None)
        if opts is not None and "control" in opts:
            from serial import rfc2217
            codes = {("dtr", True): rfc2217.SET_CONTROL_DTR_ON, ("dtr", False): rfc2217.SET_CONTROL_DTR_OFF,
                     ("rts", True): rfc2217.SET_CONTROL_RTS_ON, ("rts", False): rfc2217.SET_CONTROL_RTS_OFF}
            control = opts["control"]
            control.set(codes[first, v1])
            control.set(codes[second, v2])
            for name, value in ((first, v1), (second, v2)):
                setattr(self.port, f"_{name}_state", value)   # keep pyserial's view in step
            return
        setattr(self.port, first, v1)
        setattr(self.port, second, v2)

    def release_lines(self) -> None:
        """De-assert DTR and RTS: neither RESET nor BOOT held on any wiring, so a later reset
        (the stub's reboot) boots the firmware, not the ROM again."""
        if not self.lines_work:
            return
        try:
            self.port.dtr = False
            self.port.rts = False
        except Exception:  # noqa: BLE001
            pass

    # --- generic request ----------------------------------------------------------------------

    def await_reply(self, op: int, timeout: float) -> tuple[Reply | None, str]:
        """The next reply to ``op`` within ``timeout``, or (None, what went wrong).

        Replies to other ops are late answers to earlier requests (a retried greeting, a
        request we gave up on) and are skipped, as is ISP_DEBUG_INFO text (logged)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, f"no reply within {timeout:.1f} s"
            reply, raw = self.recv(left)
            if reply is None:
                if raw is None:
                    return None, f"no reply within {timeout:.1f} s"
                return None, f"unreadable reply {raw[:16].hex() or '(empty)'}"
            if reply.op == RomOp.DEBUG_INFO:
                self.log(f"board says: {reply.text}")
                continue
            if reply.op != op:
                continue
            return reply, ""

    def transact(self, stage: str, op: int, address: int, payload: bytes, *, timeout: float,
                 tries: int, short: bool = False, busy_sleep: float = 0.5) -> Reply:
        """Send ``payload`` until a reply for ``op`` with reason OK arrives (bounded: ``tries``
        sends, plus "flash is busy" answers for at most ``timeouts.busy_budget`` seconds)."""
        busy_deadline = time.monotonic() + self.timeouts.busy_budget
        attempt = 0
        problem = "no reply"
        while attempt < tries:
            attempt += 1
            if short:
                self.send_short(op)
            else:
                self.send(payload)
            reply, problem = self.await_reply(op, timeout)
            if reply is None:
                self.drain()
                continue
            if reply.reason == Reason.FLASH_BUSY and time.monotonic() < busy_deadline:
                attempt -= 1          # busy is not a failure, only bounded by the busy budget
                time.sleep(busy_sleep)
                continue
            if reply.reason == Reason.OK:
                return reply
            problem = f"reply {reply.describe()}"
        raise self._error(stage, op, address, f"{problem} after {tries} tries")

    # --- ROM stage ----------------------------------------------------------------------------

    def rom_greet(self, tries: int | None = None) -> bool:
        """ROM NOPs, re-sent every GREET_POLL_S within each ``timeouts.greet`` window (a NOP
        sent while the chip is still in reset is lost); True when the ROM answered."""
        for _ in range(tries or self.retries.greets_per_round):
            deadline = time.monotonic() + self.timeouts.greet
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.send_short(RomOp.NOP)
                reply, raw = self.recv(min(GREET_POLL_S, left))
                if reply is not None and (reply.reason == Reason.OK or len(raw or b"") == 2):
                    # The ROM's reply is 2 bytes; a longer frame with reason 0 is more likely a
                    # running firmware echoing our own bytes than the ROM.
                    return True
            self.drain()
        return False

    def rom_write(self, data: bytes, address: int = SRAM_BASE,
                  progress: Progress | None = None, label: str = "stub") -> None:
        total = len(data)
        for off in range(0, total, ROM_CHUNK):
            chunk = data[off:off + ROM_CHUNK]
            addr = address + off       # kflash advances the address even on a resend; we do not
            req = build_request(RomOp.MEMORY_WRITE, addr, chunk)
            problem = ""
            for _attempt in range(self.retries.rom_write):
                self.send(req)
                reply, problem = self.await_reply(RomOp.MEMORY_WRITE, self.timeouts.reply)
                if reply is not None and reply.ok:
                    break
                if reply is not None:
                    problem = f"reply {reply.describe()}"
                self.drain()
            else:
                raise self._error("SRAM upload", RomOp.MEMORY_WRITE, addr,
                                  f"{problem} after {self.retries.rom_write} tries")
            if progress:
                progress(label, off + len(chunk), total)

    def rom_boot(self, address: int = SRAM_BASE) -> None:
        """ISP_MEMORY_BOOT: no reply (the ROM jumps to the code).

        We let the frame leave the host before anyone changes the baud: kflash switches the
        port back to 115200 right after writing it, which can garble the frame's last bytes on
        a USB-serial adapter (and on the simulator's pty) after a stage-0 switch."""
        req = build_request(RomOp.MEMORY_BOOT, address, b"")
        self.send(req)
        self._flush()
        time.sleep(BOOT_FRAME_SETTLE_S + 2 * len(req) * 10 / max(1, self.port.baudrate))

    def rom_change_baud(self, baud: int = STAGE0_BAUD) -> None:
        """Stage-0 baud change (goE/trainer only, as kflash): no reply; the host follows 50 ms later."""
        self.send(build_u32_request(RomOp.CHANGE_BAUDRATE, stage0_divisor_value(baud)))
        self._flush()
        time.sleep(0.05)
        self.drain()          # late replies at the old baud must not pass for answers at the new one
        self.set_baud(baud)

    # --- stub stage ---------------------------------------------------------------------------

    def stub_greet(self, tries: int | None = None, timeout: float | None = None) -> bool:
        """Stub NOPs until it answers ``D2 E0``: ``tries`` windows of ``timeout`` seconds, the
        NOP re-sent every GREET_POLL_S*2 inside a window (the stub may still be starting)."""
        for _ in range(tries or self.retries.stub_greet):
            deadline = time.monotonic() + (timeout or self.timeouts.reply)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.send_short(StubOp.NOP)
                reply, _problem = self.await_reply(StubOp.NOP, min(2 * GREET_POLL_S, left))
                if reply is not None and reply.reason == Reason.OK:
                    return True
            self.drain()
        return False

    def stub_change_baud(self, baud: int) -> None:
        """ISP_UARTHS_BAUDRATE_SET: kflash reads no reply, waits 50 ms and switches the host."""
        self.send(build_u32_request(StubOp.UARTHS_BAUDRATE_SET, baud))
        self._flush()
        time.sleep(0.05)
        self.drain()          # late replies at the old baud must not pass for answers at the new one
        self.set_baud(baud)

    def flash_init(self, chip: int = 1) -> None:
        self.transact("flash init", StubOp.FLASH_INIT, chip,
                      build_request(StubOp.FLASH_INIT, chip, b""),
                      timeout=self.timeouts.reply, tries=self.retries.request)

    def flash_write(self, address: int, data: bytes, progress: Progress | None = None,
                    label: str = "write", done_before: int = 0, total: int | None = None) -> None:
        """64 KiB frames; the first is cut short so later frames are 64 KiB-aligned (as kflash)."""
        total = len(data) if total is None else total
        off = 0
        n = len(data)
        while off < n:
            addr = address + off
            size = min(FLASH_CHUNK - addr % FLASH_CHUNK, n - off)
            chunk = data[off:off + size]
            req = build_request(StubOp.FLASH_WRITE, addr, chunk)
            line_time = len(req) * 1.02 * 10 / max(1, self.port.baudrate)
            self.transact("flash write", StubOp.FLASH_WRITE, addr, req,
                          timeout=line_time + self.timeouts.write_extra,
                          tries=self.retries.flash_write)
            off += size
            if progress:
                progress(label, done_before + off, total)

    def flash_erase(self, address: int, length: int, nonblocking: bool = True) -> None:
        blocks = max(1, length // FLASH_CHUNK) if length else 256
        budget = self.timeouts.erase_base + self.timeouts.erase_per_block * blocks
        if not nonblocking:   # sipeed 0.8.3 stub: blocking 0xD3
            self.transact("flash erase", StubOp.FLASH_ERASE, address,
                          build_request(StubOp.FLASH_ERASE, address, b"", length=length),
                          timeout=budget, tries=1)
            return
        self.transact("flash erase", StubOp.FLASH_ERASE_NONBLOCKING, address,
                      build_request(StubOp.FLASH_ERASE_NONBLOCKING, address, b"", length=length),
                      timeout=self.timeouts.reply, tries=self.retries.request)
        deadline = time.monotonic() + budget
        while True:
            self.send_short(StubOp.FLASH_STATUS)
            reply, _raw = self.recv(self.timeouts.reply)
            if reply is not None and reply.op == StubOp.FLASH_STATUS:
                if reply.reason == Reason.OK:
                    return
                if reply.reason != Reason.FLASH_BUSY:
                    raise self._error("flash erase status", StubOp.FLASH_STATUS, address,
                                      f"erase failed: {reply.describe()}")
            else:
                self.drain()
            if time.monotonic() > deadline:
                raise self._error("flash erase status", StubOp.FLASH_STATUS, address,
                                  f"erase of {length} bytes not finished after {budget:.0f} s")
            time.sleep(0.1)

    def reboot(self) -> None:
        self.transact("reboot", StubOp.REBOOT, 0, b"", timeout=self.timeouts.reply,
                      tries=self.retries.request, short=True, busy_sleep=0.5)
        self._flush()

