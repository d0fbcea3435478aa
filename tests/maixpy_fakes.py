"""Small fakes of the board core for the MaixPy firmware tests (the core interface the firmware model uses, exactly).

``FakeUart`` is the board's UART without line pacing: host bytes go in with ``feed`` (the
interrupt character is filtered and its callback called, as the real RX path does), board bytes
come out with ``take``. ``FakeStorage`` keeps the flash in memory and /flash, /sd in tmp dirs.
``Board`` runs MaixPyFirmware in its own thread and ``Host`` talks to it like a serial client
(send bytes, read until a marker, with a timeout). ``request_reset`` halts the firmware from
another thread, as the board core does.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

from k210sim.boards import get_board
from k210sim.builds import load_build
from k210sim.program import ProgramHalted, SimContext


class FakeUart:
    def __init__(self, baud: int = 115200) -> None:
        self._cond = threading.Condition()
        self._rx = bytearray()
        self._out = bytearray()
        self.sent = 0                         # board bytes written so far
        self.baud = baud
        self.baud_log: list[tuple[int, int]] = []   # (new baud, board bytes written before)
        self._halted = False
        self._irq: tuple[int | None, Callable[[], None] | None] = (None, None)

    # -- board side (contract) ----------------------------------------------------------------
    def read(self, n: int = 1, timeout: float | None = None) -> bytes:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._halted:
                    raise ProgramHalted()
                if self._rx:
                    out = bytes(self._rx[:n])
                    del self._rx[:n]
                    return out
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return b""
                self._cond.wait(left)

    def read_exact(self, n: int, timeout: float | None = None) -> bytes:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._halted:
                    raise ProgramHalted()
                if len(self._rx) >= n:
                    out = bytes(self._rx[:n])
                    del self._rx[:n]
                    return out
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return b""
                self._cond.wait(left)

    def write(self, data: bytes) -> None:
        with self._cond:
            if self._halted:
                raise ProgramHalted()
            self._out += data
            self.sent += len(data)
            self._cond.notify_all()

    def flush(self, timeout: float = 5.0) -> None:
        with self._cond:
            if self._halted:
                raise ProgramHalted()

    def set_baud(self, baud: int) -> None:
        with self._cond:
            if self._halted:
                raise ProgramHalted()
            self.baud = baud
            self.baud_log.append((baud, self.sent))

    def set_interrupt_char(self, ch: int | None, callback: Callable[[], None] | None) -> None:
        with self._cond:
            self._irq = (ch, callback) if ch is not None and callback is not None else (None, None)

    def discard_input(self) -> None:
        with self._cond:
            self._rx.clear()

    # -- board core / host side ----------------------------------------------------------------
    def halt(self) -> None:
        with self._cond:
            self._halted = True
            self._cond.notify_all()

    def feed(self, data: bytes) -> None:
        calls: list[Callable[[], None]] = []
        with self._cond:
            ch, cb = self._irq
            if ch is not None and cb is not None and ch in data:
                parts = data.split(bytes([ch]))
                data = b"".join(parts)
                calls = [cb] * (len(parts) - 1)
            self._rx += data
            self._cond.notify_all()
        for call in calls:
            call()

    def take(self, timeout: float) -> bytes:
        """Board output so far (waiting up to timeout for at least one byte)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._out:
                left = deadline - time.monotonic()
                if left <= 0:
                    return b""
                self._cond.wait(left)
            out = bytes(self._out)
            self._out.clear()
            return out


class FakeFlash:
    def __init__(self, size: int = 16 * 1024 * 1024) -> None:
        self.size = size
        self._data = bytearray(b"\xff") * size

    def read(self, addr: int, n: int) -> bytes:
        if addr < 0 or n < 0 or addr + n > self.size:
            raise ValueError(f"flash read 0x{addr:x}+{n} outside 0..0x{self.size:x}")
        return bytes(self._data[addr:addr + n])

    def write(self, addr: int, data: bytes) -> None:
        self._data[addr:addr + len(data)] = data

    def erase(self, addr: int, n: int) -> None:
        self._data[addr:addr + n] = b"\xff" * n


class FakeStorage:
    def __init__(self, root: Path, sd: bool = True) -> None:
        self.flash = FakeFlash()
        self.flashfs_root = root / "flashfs"
        self._sd_dir = root / "sd"
        self.flashfs_root.mkdir(parents=True, exist_ok=True)
        self._sd_dir.mkdir(parents=True, exist_ok=True)
        self.sd_present = sd
        self._config: dict[str, Any] = {}

    @property
    def sd_root(self) -> Path | None:
        return self._sd_dir if self.sd_present else None

    @property
    def sd_dir(self) -> Path:
        return self._sd_dir

    def get_config(self, key: str, default: Any = None) -> Any:
        return self._config.get(key, default)

    def set_config(self, key: str, value: Any) -> None:
        self._config[key] = value

    def set_gc_heap_size(self, size: int) -> None:
        """What Maix.utils.gc_heap_size(size) leaves behind: /flash/freq.conf."""
        from k210sim.firmware import config
        config.save(self.flashfs_root, config.BoardConfig(config.FREQ_CPU_DEFAULT,
                                                          config.FREQ_PLL1_DEFAULT, 1, size))

    def gc_heap_size(self) -> int:
        from k210sim.firmware import config
        return config.load(self.flashfs_root, 0).gc_heap_size


class FakeEvents:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, kind: str, t: float | None = None, **fields: Any) -> int:
        self.events.append({"kind": kind, **fields})
        return len(self.events)


class Host:
    """The serial client's view: send bytes, read until a marker."""

    def __init__(self, uart: FakeUart) -> None:
        self.uart = uart
        self.buf = bytearray()

    def send(self, data: bytes | str) -> None:
        self.uart.feed(data.encode() if isinstance(data, str) else data)

    def read_until(self, marker: bytes | str, timeout: float = 5.0) -> bytes:
        marker = marker.encode() if isinstance(marker, str) else marker
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out = bytes(self.buf[:i + len(marker)])
                del self.buf[:i + len(marker)]
                return out
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {marker!r} within {timeout} s; got {bytes(self.buf[-600:])!r}")
            self.buf += self.uart.take(min(left, 0.2))

    def read_for(self, seconds: float) -> bytes:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.buf += self.uart.take(max(end - time.monotonic(), 0.001))
        out = bytes(self.buf)
        self.buf.clear()
        return out

    # -- conveniences -------------------------------------------------------------------------
    def raw_exec(self, code: str | bytes, timeout: float = 10.0) -> tuple[bytes, bytes]:
        """In the raw REPL (after its '>'): run code, return (stdout, traceback)."""
        self.send(code.encode() if isinstance(code, str) else code)
        self.send(b"\x04")
        self.read_until(b"OK", timeout)
        out = self.read_until(b"\x04", timeout)[:-1]
        err = self.read_until(b"\x04", timeout)[:-1]
        self.read_until(b">", timeout)
        return out, err

    def enter_raw(self) -> None:
        self.send(b"\r\x03\x03\x01")
        self.read_until(b"raw REPL; CTRL-B to exit\r\n>")

    def friendly(self, line: str, timeout: float = 5.0) -> str:
        """Type one line at >>> and return what came back before the next prompt."""
        self.send(line.encode() + b"\r")
        out = self.read_until(b">>> ", timeout)[:-4]
        return out.decode("utf-8", "replace")


class Board:
    """MaixPyFirmware on fakes, in its own thread."""

    def __init__(self, tmp_path: Path, build: str = "maixpy-v0.6.2-full", sd: bool = True,
                 storage: FakeStorage | None = None) -> None:
        from k210sim.maixpy import MaixPyFirmware
        self.build = load_build(build)
        self.storage = storage or FakeStorage(tmp_path, sd=sd)
        self.uart = FakeUart()
        self.events = FakeEvents()
        self.resets: list[str] = []
        self.ctx = SimContext(board=get_board("maix-bit"), uart=self.uart, storage=self.storage,
                              events=self.events, request_reset=self._request_reset,
                              state_dir=tmp_path, faults=None)
        self.fw = MaixPyFirmware(self.ctx, self.build)
        self.host = Host(self.uart)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="maixpy-test-cpu", daemon=True)

    def _run(self) -> None:
        try:
            self.fw.run()
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def _request_reset(self, reason: str) -> None:
        self.resets.append(reason)
        self.uart.halt()
        threading.Thread(target=self.fw.halt, daemon=True).start()

    def start(self, wait_prompt: bool = True) -> "Board":
        self.thread.start()
        if wait_prompt:
            self.host.read_until(b">>> ", timeout=10)
        return self

    def stop(self, timeout: float = 2.0) -> float:
        """Halt the firmware; returns how long run() took to return."""
        t0 = time.monotonic()
        self.fw.halt()
        self.thread.join(timeout)
        took = time.monotonic() - t0
        assert not self.thread.is_alive(), "firmware thread did not stop"
        self.uart.halt()
        if self.error is not None and not isinstance(self.error, ProgramHalted):
            raise AssertionError(f"firmware thread died: {self.error!r}") from self.error
        return took

    def wait_stopped(self, timeout: float = 5.0) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive()
