"""IspFlasher: flash a K210 board over its UART ISP (the API the framework and `hil flash` use).

    with IspFlasher("/dev/ttyUSB0", get_board("maix-bit"), isp_baud=1500000) as f:
        f.flash_firmware("maixpy.bin")          # wrapped as kflash does, written at 0
        f.flash_data(0x300000, model_bytes)     # raw bytes at an address (a kmodel)
        f.reboot()

Entering the ROM: the board's DTR/RTS sequence (``BoardSpec.isp_sequence``). When the port
cannot drive modem lines (a pty answers ENOTTY; the simulator's pty without the LD_PRELOAD
shim), the caller's ``enter_isp`` callable is used instead (e.g. the simulator's control socket
``{"cmd":"reset","boot":true}`` or a power driver). Neither: a clear IspError.

Fast mode: with ``isp_baud`` above ``baud``, the stub is asked to switch (0xD6) after its
greeting; when the board does not answer at the fast baud we fall back to ``baud`` and log a
note. The ROM-stage switch (0xC6 with kflash's 38.6/38 divisor value) is used only on the boards
where kflash uses it (goE/maixduino/trainer) and only when ``isp_baud >= 1500000``.

Every operation connects on first use (ROM greeting, stub upload, boot, stub greeting, baud,
flash init) and stays connected until ``reboot()`` or ``close()``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from hil.boards import BoardSpec
from hil.errors import IspError, LinkError
from hil.isp.image import (DEFAULT_FLAGS, DEFAULT_FLASH_SIZE, SECTOR, check_no_overlap, check_region,
                           looks_wrapped, read_kfpkg, wrap_firmware)
from hil.isp.loader import (STAGE0_BAUD, STAGE0_BOARDS, STUB_BOOT_WAIT_S, IspSession, Progress,
                            Retries, Timeouts)
from hil.isp.packets import RomOp, StubOp
from hil.isp.stub import SRAM_BASE, identify, load_stub

_logger = logging.getLogger("hil.isp")

PORT_READ_TIMEOUT = 0.05   # pyserial read timeout; every wait above it has its own deadline


@dataclass
class FlashStats:
    connect_s: float = 0.0       # reset + ROM greeting + stub upload + stub greeting + baud + init
    write_s: float = 0.0         # time inside flash writes
    bytes_written: int = 0
    baud: int = 0                # baud the writes ran at
    notes: list[str] = field(default_factory=list)


class IspFlasher:
    def __init__(self, port, board: BoardSpec, baud: int = 115200, isp_baud: int | None = None,
                 progress: Progress | None = None, log: Callable[[str], None] | None = None, *,
                 enter_isp: Callable[[], None] | None = None, stub: str | Path | bytes | None = None,
                 flash_chip: int = 1, rom_baud_change: bool = True, timeouts: Timeouts = Timeouts(),
                 retries: Retries = Retries()) -> None:
        self.board = board
        self.baud = baud
        self.isp_baud = isp_baud if isp_baud and isp_baud != baud else None
        self.progress = progress
        self.log = log or _logger.info
        self.enter_isp = enter_isp
        self.flash_chip = flash_chip
        self.rom_baud_change = rom_baud_change   # False: like kflash -S, the ROM stage stays slow
        self.timeouts = timeouts
        self.retries = retries
        self._stub_src = stub
        self._stub: bytes | None = None
        self._own_port = isinstance(port, (str, Path))
        self.port_name = str(port) if self._own_port else str(getattr(port, "port", None) or port)
        self._port = _open(str(port), baud) if self._own_port else port
        self._old_timeout = None if self._own_port else getattr(port, "timeout", None)
        if not self._own_port and (self._old_timeout is None or self._old_timeout > 0.2):
            port.timeout = PORT_READ_TIMEOUT   # a blocking read would defeat every deadline
        self.session = IspSession(self._port, board, name=self.port_name, log=self.log,
                                  timeouts=timeouts, retries=retries)
        self.connected = False
        self.firmware_end: int | None = None   # end of the image flashed at 0 in this session
        self.stats = FlashStats(baud=baud)

    # --- lifetime -----------------------------------------------------------------------------

    def __enter__(self) -> "IspFlasher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the port if we opened it (a caller's port gets its timeout back). The board
        stays in ISP mode unless ``reboot()`` was called."""
        if self._port is None:
            return
        try:
            if self._own_port:
                self._port.close()
            elif self._port.timeout != self._old_timeout:
                self._port.timeout = self._old_timeout
        except Exception:  # noqa: BLE001 - closing a dead port must not mask the real error
            pass
        self._port = None

    # --- connection ---------------------------------------------------------------------------

    @property
    def stub(self) -> bytes:
        if self._stub is None:
            src = self._stub_src
            self._stub = bytes(src) if isinstance(src, (bytes, bytearray)) else load_stub(src)
        return self._stub

    def connect(self) -> None:
        if self.connected:
            return
        t0 = time.monotonic()
        stub = self.stub      # fail on a missing stub before touching the board
        fast = self.isp_baud
        stage0 = bool(self.rom_baud_change and fast and fast >= STAGE0_BAUD
                      and self.board.kflash_board in STAGE0_BOARDS)
        for _attempt in range(3):     # fast, then without ROM stage 0, then slow throughout
            self._enter_rom()
            if stage0 and not self._rom_stage0():
                stage0 = False
                continue          # the ROM is lost at the fast baud: reset and go slow
            try:
                self._upload_and_boot(stub)
            except IspError:
                if not stage0:
                    raise
                self._note(f"the stub did not answer after an upload at {STAGE0_BAUD} baud; "
                           "starting over without the ROM baud change")
                stage0 = False
                continue
            if fast and not self._stub_fast(fast):
                fast = None
                stage0 = False
                continue          # the stub is lost at the fast baud: start over at `baud`
            break
        else:
            raise IspError(f"ISP on {self.port_name} ({self.board.name}): could not connect "
                           f"even at {self.baud} baud")
        self.session.flash_init(self.flash_chip)
        self.connected = True
        self.stats.baud = self._port.baudrate
        self.stats.connect_s += time.monotonic() - t0

    def _note(self, msg: str) -> None:
        self.stats.notes.append(msg)
        self.log(msg)

    def _enter_rom(self) -> None:
        """Reset into the ROM and greet it, alternating DTR/RTS and ``enter_isp`` when both exist
        (a port may accept DTR/RTS that never reach the board, e.g. ser2net on a pty)."""
        s = self.session
        s.set_baud(self.baud)
        tried: list[str] = []
        for rnd in range(self.retries.greet_rounds):
            s.drain()
            ways = [w for w in ("lines", "enter") if (w == "lines" and s.lines_work is not False)
                    or (w == "enter" and self.enter_isp is not None)]
            if not ways:
                raise IspError(f"ISP on {self.port_name} ({self.board.name}): cannot reset the "
                               "board into ISP: the port cannot drive DTR/RTS (a pty? run the "
                               "client under `hil sim wrap`) and no enter_isp was given")
            way = ways[rnd % len(ways)]
            if way == "lines" and not s.run_sequence(self.board.isp_sequence):
                if self.enter_isp is None:
                    continue            # raises above on the next round
                way = "enter"
            if way == "enter":
                try:
                    self.enter_isp()
                except Exception as exc:  # noqa: BLE001 - report the driver's failure as ISP's
                    raise IspError(f"ISP on {self.port_name} ({self.board.name}): entering ISP "
                                   f"through the rig failed: {exc}") from exc
                s.drain()
            how = f"DTR/RTS sequence {self.board.isp_sequence}" if way == "lines" else "the rig's enter_isp"
            if how not in tried:
                tried.append(how)
            if s.rom_greet():
                s.release_lines()
                return
        raise s._error("ROM greeting", RomOp.NOP, 0,
                       f"no answer after {self.retries.greet_rounds} rounds of reset "
                       f"({' and '.join(tried) or 'none possible'}) and greeting; check the board "
                       f"wiring ({self.board.wiring}) and the port")

    def _rom_stage0(self) -> bool:
        s = self.session
        s.rom_change_baud(STAGE0_BAUD)
        if s.rom_greet(tries=3):
            return True
        self._note(f"ISP ROM on {self.port_name} did not answer at {STAGE0_BAUD} baud; "
                   f"falling back to {self.baud}")
        s.set_baud(self.baud)
        return False

    def _upload_and_boot(self, stub: bytes) -> None:
        s = self.session
        s.rom_write(stub, SRAM_BASE, self.progress, "stub")
        s.rom_boot(SRAM_BASE)
        s.set_baud(self.baud)          # the stub starts at the default baud (as kflash assumes)
        time.sleep(STUB_BOOT_WAIT_S)
        s.drain()
        if not s.stub_greet():
            raise s._error("stub greeting", StubOp.NOP, SRAM_BASE,
                           f"the flash-mode stub ({len(stub)} bytes booted at {SRAM_BASE:#x}) "
                           "did not answer")

    def _stub_fast(self, fast: int) -> bool:
        s = self.session
        s.stub_change_baud(fast)
        if s.stub_greet(tries=3, timeout=0.5):
            return True
        s.set_baud(self.baud)
        s.drain()
        if s.stub_greet(tries=2, timeout=0.5):
            self._note(f"board on {self.port_name} did not answer at {fast} baud; "
                       f"continuing at {self.baud}")
            self.isp_baud = None
            return True
        self._note(f"board on {self.port_name} lost at {fast} baud; starting over at {self.baud}")
        self.isp_baud = None
        return False

    # --- operations ---------------------------------------------------------------------------

    def _write(self, addr: int, data: bytes, label: str) -> None:
        self.connect()
        t0 = time.monotonic()
        self.session.flash_write(addr, data, self.progress, label)
        self.stats.write_s += time.monotonic() - t0
        self.stats.bytes_written += len(data)

    def flash_firmware(self, image: bytes | str | Path, flags: int = DEFAULT_FLAGS) -> int:
        """Write a firmware at flash 0. A payload (.bin as built) is wrapped as kflash 1.1.6 does;
        an already wrapped image (length and SHA-256 consistent) is written as is; a .kfpkg
        path is written entry by entry. Returns the bytes written."""
        if isinstance(image, (str, Path)):
            p = Path(image)
            if p.suffix == ".kfpkg":
                return self.flash_kfpkg(p)
            data = _read(p)
        else:
            data = bytes(image)
        if not data:
            raise IspError(f"firmware for {self.port_name} is empty")
        wrapped = data if looks_wrapped(data) else wrap_firmware(data, flags)
        check_region(0, len(wrapped), self.board.flash_size, what="firmware")
        self._write(0, wrapped, "firmware")
        self.firmware_end = len(wrapped)
        return len(wrapped)

    def flash_data(self, addr: int, data: bytes | str | Path, firmware_end: int | None = None,
                   name: str = "data") -> int:
        """Raw bytes at ``addr`` (a kmodel at 0x300000). Refused when the region overlaps the
        firmware: ``firmware_end`` given here, else the image flashed earlier in this session."""
        if isinstance(data, (str, Path)):
            name = Path(data).name
            data = _read(Path(data))
        data = bytes(data)
        check_region(addr, len(data), self.board.flash_size, what=name)
        fe = firmware_end if firmware_end is not None else self.firmware_end
        if addr != 0:
            check_no_overlap(addr, len(data), fe, what=name)
        self._write(addr, data, name)
        return len(data)

    def flash_kfpkg(self, path: str | Path) -> int:
        entries = read_kfpkg(path)
        regions = []
        fw_end = None
        for e in entries:
            blob = e.flash_bytes()
            check_region(e.address, len(blob), self.board.flash_size, what=f"{path}:{e.name}")
            if e.address == 0:
                fw_end = len(blob)
            for a, n, other in regions:
                if e.address < a + n and a < e.address + len(blob):
                    raise IspError(f"{path}: {e.name} at {e.address:#010x} overlaps {other} at {a:#010x}")
            regions.append((e.address, len(blob), e.name))
        total = 0
        for e in entries:
            blob = e.flash_bytes()
            if e.address != 0:
                check_no_overlap(e.address, len(blob), fw_end if fw_end is not None else self.firmware_end,
                                 what=f"{path}:{e.name}")
            self.log(f"writing {e.name} at {e.address:#010x} ({len(blob)} bytes)")
            self._write(e.address, blob, e.name)
            if e.address == 0:
                self.firmware_end = len(blob)
            total += len(blob)
        return total

    def erase(self, addr: int, length: int) -> None:
        """Erase [addr, addr+length); both 4 KiB-aligned (the stub erases whole sectors)."""
        if addr % SECTOR or length % SECTOR:
            raise IspError(f"erase at {addr:#010x}: address and length ({length:#x}) must be "
                           "4 KiB-aligned")
        check_region(addr, length, self.board.flash_size, what="erase")
        self.connect()
        info = identify(self.stub)
        nonblocking = info.has_nonblocking_erase if info else True
        self.session.flash_erase(addr, length, nonblocking=nonblocking)

    def reboot(self) -> None:
        """Leave ISP and boot the firmware: the stub's 0xD5, else the board's boot sequence."""
        if not self.connected:
            self._reset_to_firmware("not connected")
            return
        info = identify(self.stub)
        if info is None or info.has_reboot:
            self.session.reboot()
        else:
            self._reset_to_firmware(f"stub {info.name} has no reboot command")
        self.connected = False
        try:
            self.session.set_baud(self.baud)
        except Exception:  # noqa: BLE001 - the port may be gone with the board; nothing to undo
            pass

    def _reset_to_firmware(self, why: str) -> None:
        s = self.session
        if s.lines_work is not False and s.run_sequence(self.board.boot_sequence):
            s.release_lines()
            return
        raise IspError(f"ISP on {self.port_name} ({self.board.name}): cannot reboot ({why}) and "
                       "the port cannot drive DTR/RTS; power-cycle the board")


def _read(p: Path) -> bytes:
    """A file to flash: a regular file no bigger than the flash (a FIFO or /dev/zero is one line)."""
    from hil.inputfile import read_regular
    return read_regular(p, DEFAULT_FLASH_SIZE, "image the 16 MiB flash can hold", IspError)


def _open(url: str, baud: int):
    import serial   # pyserial; imported here so the packet code stays usable without it

    from hil.link import open_reason, redact, redact_url

    try:
        return serial.serial_for_url(url, baudrate=baud, timeout=PORT_READ_TIMEOUT)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise LinkError(f"cannot open ISP port {redact_url(url)}: {redact(open_reason(exc))}") from None
