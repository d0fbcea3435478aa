"""The byte-stream core of the simulated board: the board's UART and the wire to the host.

``SerialLine`` is the cable. Front ends (pty, RFC 2217, raw TCP: k210sim.frontends) are the
host's USB-serial adapters plugged into it; ``Uart`` is the chip's UART peripheral at the other
end. The board attaches a fresh Uart at every boot (baud 115200, empty FIFOs) and detaches it
when the chip stops; while no Uart is attached, host bytes fall on the floor, as they do on a
chip held in reset.

Timing: board->host bytes leave through one pump thread at the board's baud; host->board bytes
are paced in the front end's reader thread at that front end's baud (k210sim.pacing), so a slow
line pushes back on the client through the OS socket/pty buffers. Each front end has its own
host-side baud; where it differs from the board's, bytes in both directions are garbled
(k210sim.pacing.garble). Board output goes to every attached front end.
"""
from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Callable, Protocol

from k210sim.pacing import LinePacer, batch_size, garble, sleep_until
from k210sim.program import ProgramHalted

if TYPE_CHECKING:
    from k210sim.events import EventLog
    from k210sim.faults import FaultHooks

DEFAULT_BAUD = 115200
TX_QUEUE_LIMIT = 4096          # write() blocks past this, as a UART TX FIFO + driver buffer does
# Bytes the board buffers from the host before it drops them. The real MaixPy REPL ring buffer is
# much smaller (UNCONFIRMED size); the emulated firmware reads promptly, so we keep a large one
# and log an "rx-overflow" event if it is ever exceeded.
RX_CAPACITY = 1 << 20


class FrontEnd(Protocol):
    name: str

    def host_baud(self) -> int:
        """The client's baud rate right now (a pty front end polls the pty here)."""

    def send(self, data: bytes) -> None:
        """Deliver board->host bytes to the client (already garbled when bauds differ)."""


class Uart:
    """The board's side of the serial line (REPL UART / ISP UART) for one boot."""

    def __init__(self, line: SerialLine, baud: int = DEFAULT_BAUD) -> None:
        self._line = line
        self._cond = line.cond
        self._baud = baud
        self._rx = bytearray()
        self._tx = bytearray()
        self._inflight = 0
        self._halted = False
        self._irq_char: int | None = None
        self._irq_cb: Callable[[], None] | None = None

    # -- program side ---------------------------------------------------------------------
    @property
    def baud(self) -> int:
        return self._baud

    @property
    def halted(self) -> bool:
        return self._halted

    def read(self, n: int = 1, timeout: float | None = None) -> bytes:
        """Block until at least one byte (returns up to n) or timeout (-> b"")."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._halted:
                    raise ProgramHalted()
                if self._rx:
                    out = bytes(self._rx[:n])
                    del self._rx[:n]
                    return out
                if not self._wait(deadline):
                    return b""

    def read_exact(self, n: int, timeout: float | None = None) -> bytes:
        """All n bytes, or b"" on timeout (then nothing is consumed)."""
        if n > RX_CAPACITY:
            raise ValueError(f"read_exact({n}) exceeds the UART buffer ({RX_CAPACITY} bytes)")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._halted:
                    raise ProgramHalted()
                if len(self._rx) >= n:
                    out = bytes(self._rx[:n])
                    del self._rx[:n]
                    return out
                if not self._wait(deadline):
                    return b""

    def write(self, data: bytes) -> None:
        """Queue bytes for transmission at line pace; blocks while > 4 KiB is queued."""
        view = memoryview(bytes(data))
        with self._cond:
            while view:
                while len(self._tx) > TX_QUEUE_LIMIT and not self._halted:
                    self._cond.wait()
                if self._halted:
                    raise ProgramHalted()
                piece = view[:TX_QUEUE_LIMIT]
                self._tx += piece
                view = view[len(piece):]
                self._cond.notify_all()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every queued byte has reached the host (or timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (self._tx or self._inflight) and not self._halted:
                if not self._wait(deadline):
                    return
            if self._halted:
                raise ProgramHalted()

    def set_baud(self, baud: int) -> None:
        """The board changes its baud rate (repl_uart().init(), the ISP baud command)."""
        if baud <= 0:
            raise ValueError(f"bad baud rate {baud}")
        with self._cond:
            if self._halted:
                raise ProgramHalted()
            changed = baud != self._baud
            self._baud = baud
        if changed:
            self._line.events.emit("baud", side="board", baud=baud)

    def set_interrupt_char(self, ch: int | None, callback: Callable[[], None] | None) -> None:
        """When a received byte == ch: drop it and call callback() from the RX thread."""
        with self._cond:
            self._irq_char = ch if callback is not None else None
            self._irq_cb = callback if ch is not None else None

    def discard_input(self) -> None:
        with self._cond:
            self._rx.clear()

    # -- board / line side ----------------------------------------------------------------
    def _wait(self, deadline: float | None) -> bool:
        """Wait on the line condition; False once the deadline has passed."""
        if deadline is None:
            self._cond.wait()
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self._cond.wait(left)
        return True

    def halt(self) -> None:
        """Stop this boot's UART: every blocked or later call raises ProgramHalted."""
        with self._cond:
            self._halted = True
            self._tx.clear()
            self._cond.notify_all()

    def _accept(self, chunk: bytes) -> list[Callable[[], None]]:
        """Take received bytes (line lock held); returns interrupt callbacks to run unlocked."""
        calls: list[Callable[[], None]] = []
        ch, cb = self._irq_char, self._irq_cb
        if ch is not None and cb is not None and ch in chunk:
            parts = chunk.split(bytes([ch]))
            chunk = b"".join(parts)
            calls = [cb] * (len(parts) - 1)
        room = RX_CAPACITY - len(self._rx)
        if len(chunk) > room:
            self._line.events.emit("rx-overflow", dropped=len(chunk) - room)
            chunk = chunk[:room]
        if chunk:
            self._rx += chunk
            self._cond.notify_all()
        return calls


class SerialLine:
    """The cable between the host's front ends and the board's Uart."""

    def __init__(self, events: EventLog, faults: FaultHooks | None = None, pace: bool = True) -> None:
        self.events = events
        self.faults = faults
        self.pace = pace
        self.cond = threading.Condition()
        self._uart: Uart | None = None
        self._frontends: list[FrontEnd] = []
        self._rx_pacer = LinePacer(pace)
        self._tx_pacer = LinePacer(pace)
        self._closing = False
        self._tx_thread = threading.Thread(target=self._tx_loop, name="sim-line-tx", daemon=True)
        self._tx_thread.start()

    # -- wiring ---------------------------------------------------------------------------
    def new_uart(self) -> Uart:
        """A fresh UART for a new boot, attached to the line (the old one is halted)."""
        uart = Uart(self)
        self.attach_uart(uart)
        return uart

    def attach_uart(self, uart: Uart | None) -> None:
        with self.cond:
            old = self._uart
            self._uart = uart
            self.cond.notify_all()
        if old is not None and old is not uart:
            old.halt()

    @property
    def uart(self) -> Uart | None:
        return self._uart

    @property
    def board_baud(self) -> int:
        uart = self._uart
        return uart.baud if uart is not None else DEFAULT_BAUD

    def attach_frontend(self, fe: FrontEnd) -> None:
        with self.cond:
            self._frontends.append(fe)

    def detach_frontend(self, fe: FrontEnd) -> None:
        with self.cond:
            if fe in self._frontends:
                self._frontends.remove(fe)

    def frontends(self) -> list[FrontEnd]:
        with self.cond:
            return list(self._frontends)

    def note_host_baud(self, source: str, baud: int) -> None:
        """A front end saw its client change baud rate."""
        self.events.emit("baud", side="host", source=source, baud=baud)

    # -- host -> board --------------------------------------------------------------------
    def from_host(self, data: bytes, fe: FrontEnd) -> None:
        """Bytes a client sent: paced at the client's baud, then into the board's UART."""
        if self.faults is not None:
            data = self.faults.host_to_board(data)
        pos = 0
        while pos < len(data) and not self._closing:
            host_baud = fe.host_baud()
            chunk = data[pos:pos + batch_size(host_baud, self.pace)]
            pos += len(chunk)
            sleep_until(self._rx_pacer.reserve(len(chunk), host_baud))
            calls: list[Callable[[], None]] = []
            with self.cond:
                uart = self._uart
                if uart is None or uart.halted:
                    continue  # the chip is not running: nothing receives the bytes
                if host_baud != uart.baud:
                    chunk = garble(chunk)
                calls = uart._accept(chunk)
            for call in calls:
                try:
                    call()
                except Exception as exc:  # a broken handler must not kill the front end
                    self.events.emit("program-error", where="interrupt-char callback", error=repr(exc))
        if self.faults is not None:
            self.faults.host_delivered()   # e.g. a reset armed for "after byte N" happens now

    # -- board -> host --------------------------------------------------------------------
    def _tx_loop(self) -> None:
        while True:
            with self.cond:
                while not self._closing and not (self._uart is not None and self._uart._tx):
                    self.cond.wait()
                if self._closing:
                    return
                uart = self._uart
                baud = uart.baud
                n = batch_size(baud, self.pace)
                chunk = bytes(uart._tx[:n])
                del uart._tx[:n]
                uart._inflight = len(chunk)
                frontends = list(self._frontends)
                self.cond.notify_all()
            sleep_until(self._tx_pacer.reserve(len(chunk), baud))
            if self.faults is not None:
                chunk = self.faults.board_to_host(chunk)
            for fe in frontends:
                try:
                    fe.send(chunk if fe.host_baud() == baud else garble(chunk))
                except Exception as exc:  # one broken client must not stop the others
                    self.events.emit("frontend-error", source=fe.name, error=repr(exc))
            with self.cond:
                uart._inflight = 0
                self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self._closing = True
            self.cond.notify_all()
        uart = self._uart
        if uart is not None:
            uart.halt()
        self._tx_thread.join(timeout=5.0)
