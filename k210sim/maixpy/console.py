"""The REPL UART as the firmware uses it: buffered input, raw and "cooked" output, baud switch.

All reads go through one pushback buffer in front of ``ctx.uart`` so the raw REPL can take a
whole chunk, split it at the first control byte, and leave the rest (the next command, or data
the code is about to read from sys.stdin) for whoever reads next. Reads are chunked (no per-byte
Python loop on the upload path). Output from print()/sys.stdout is "cooked" like MicroPython's
mp_hal_stdout_tx_strn_cooked: every "\\n" goes out as "\\r\\n".

Baud switch (``machine.UART.repl_uart().init(baud, ...)``): the new rate takes effect only after
the reply to the command that asked for it has left the board at the old rate, i.e. when the
firmware next waits for input: before the REPL blocks for its next command, or before user code
reads sys.stdin. (UNCONFIRMED how the real UARTHS orders this; this is the order a host can
follow: send the command, read the whole reply, then switch its own baud.)
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from k210sim.program import ProgramHalted

if TYPE_CHECKING:
    from k210sim.maixpy.cpu import Cpu

READ_CHUNK = 65536
POLL_S = 0.05


class Console:
    def __init__(self, uart, cpu: "Cpu") -> None:
        self.uart = uart
        self.cpu = cpu
        self._buf = bytearray()
        self._pos = 0
        self.pending_baud: int | None = None

    # -- input ------------------------------------------------------------------------------
    def unread(self, data: bytes) -> None:
        """Put bytes back in front of the input (what the last reader took but did not use)."""
        if data:
            rest = self._buf[self._pos:]
            self._buf = bytearray(data) + rest
            self._pos = 0

    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def _take(self, n: int) -> bytes:
        out = bytes(self._buf[self._pos:self._pos + n])
        self._pos += len(out)
        if self._pos >= len(self._buf):
            self._buf = bytearray()
            self._pos = 0
        return out

    def read_some(self, n: int = READ_CHUNK, user: bool = False, timeout: float | None = None
                  ) -> bytes:
        """At least one byte (up to n), blocking; ``user``: Ctrl-C/halt interrupt the wait.

        With ``timeout``, returns b"" when nothing arrived in time.
        """
        if self.buffered():
            return self._take(n)
        self.apply_pending_baud()
        waited = 0.0
        while True:
            if self.cpu.halted:
                raise ProgramHalted()
            if user:
                self.cpu.poll()
            data = self.uart.read(n, timeout=POLL_S)
            if data:
                return data
            waited += POLL_S
            if timeout is not None and waited >= timeout:
                return b""

    def read_exact(self, n: int, user: bool = True) -> bytes:
        out = bytearray()
        while len(out) < n:
            out += self.read_some(n - len(out), user=user)
        return bytes(out)

    def read_until(self, stop: bytes, user: bool = True) -> bytes:
        """Bytes up to and including ``stop`` (one byte, e.g. b"\\n")."""
        out = bytearray()
        while True:
            chunk = self.read_some(user=user)
            i = chunk.find(stop)
            if i >= 0:
                out += chunk[:i + 1]
                self.unread(chunk[i + 1:])
                return bytes(out)
            out += chunk

    def getch(self) -> int:
        """One byte (the friendly REPL's line editor works a byte at a time, as readline does)."""
        if not self.buffered():
            self._buf = bytearray(self.read_some())
            self._pos = 0
        c = self._buf[self._pos]
        self._pos += 1
        return c

    # -- output -----------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.cpu.halted:
            raise ProgramHalted()
        if data:
            self.uart.write(bytes(data))

    def write_str(self, text: str) -> None:
        """Firmware text (already with \\r\\n where the C code writes them)."""
        self.write(text.encode("utf-8", "replace"))

    def write_cooked(self, text: str | bytes) -> None:
        """print()/sys.stdout output: '\\n' becomes '\\r\\n'."""
        data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else bytes(text)
        self.write(data.replace(b"\n", b"\r\n"))

    # -- baud -------------------------------------------------------------------------------
    def request_baud(self, baud: int) -> None:
        self.pending_baud = baud

    def apply_pending_baud(self) -> None:
        baud = self.pending_baud
        if baud is None:
            return
        self.pending_baud = None
        self.uart.flush(timeout=10.0)
        if baud != self.uart.baud:
            self.uart.set_baud(baud)
