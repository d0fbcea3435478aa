"""Stand-in programs for the simulated board's own tests (not the real MaixPy or ISP ROM).

They let the transport and board tests run without k210sim.maixpy / k210sim.isp.target.
"""
from __future__ import annotations

import threading
import time

from k210sim.program import ProgramHalted, SimContext


class EchoProgram:
    """Greets with ``<MODE>\\r\\n`` and echoes every byte; ``!R`` in the input asks for a reset."""

    def __init__(self, ctx: SimContext, mode: str) -> None:
        self.ctx = ctx
        self.mode = mode
        self.halted_seen = False
        self._stop = threading.Event()

    def run(self) -> None:
        uart = self.ctx.uart
        try:
            uart.write(f"{self.mode.upper()}\r\n".encode())
            while not self._stop.is_set():
                data = uart.read(4096, timeout=0.2)
                if data == b"!R":
                    self.ctx.request_reset("test asked for a reset")
                    continue
                if data:
                    uart.write(data)
        except ProgramHalted:
            self.halted_seen = True
            raise

    def halt(self) -> None:
        self._stop.set()


class SinkProgram:
    """Reads and keeps everything; notes when ``expect`` bytes have arrived."""

    def __init__(self, ctx: SimContext, expect: int = 0) -> None:
        self.ctx = ctx
        self.data = bytearray()
        self.expect = expect
        self.first_at: float | None = None
        self.done_at: float | None = None
        self.done = threading.Event()
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.is_set():
            chunk = self.ctx.uart.read(65536, timeout=0.2)
            if chunk:
                now = time.monotonic()
                if self.first_at is None:
                    self.first_at = now
                self.data += chunk
                if self.expect and len(self.data) >= self.expect and not self.done.is_set():
                    self.done_at = now
                    self.done.set()

    def halt(self) -> None:
        self._stop.set()


class StubbornProgram:
    """Ignores halt() and never touches its UART: the board must give up joining it."""

    def __init__(self, ctx: SimContext) -> None:
        self.release = threading.Event()

    def run(self) -> None:
        self.release.wait(10)

    def halt(self) -> None:
        pass


class Factory:
    """program_factory recording every boot; ``kind`` picks the program for firmware mode."""

    def __init__(self, kind: str = "echo", expect: int = 0) -> None:
        self.kind = kind
        self.expect = expect
        self.boots: list[tuple[str, str | None]] = []
        self.programs: list[object] = []

    def __call__(self, mode: str, ctx: SimContext, profile):
        self.boots.append((mode, profile.name if profile is not None else None))
        if self.kind == "sink" and mode == "firmware":
            prog = SinkProgram(ctx, self.expect)
        elif self.kind == "stubborn":
            prog = StubbornProgram(ctx)
        else:
            prog = EchoProgram(ctx, mode)
        self.programs.append(prog)
        return prog

    @property
    def last(self):
        return self.programs[-1]


class FakeFrontEnd:
    """A host adapter without a transport: collects board output, injects host bytes."""

    name = "fake"

    def __init__(self, baud: int = 115200) -> None:
        self.baud = baud
        self.received = bytearray()
        self._cond = threading.Condition()

    def host_baud(self) -> int:
        return self.baud

    def send(self, data: bytes) -> None:
        with self._cond:
            self.received += data
            self._cond.notify_all()

    def wait_for(self, needle: bytes, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while needle not in self.received:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True
