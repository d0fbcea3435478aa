"""In-process simulated board for the ISP tests: a real SimBoard on a SerialLine, no pty.

``LoopPort`` is a pyserial-like host port plugged into the line as a front end; its DTR/RTS
setters feed the board's reset state machine (or raise ENOTTY, like a pty). No tests here.
"""
from __future__ import annotations

import errno
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from hil.boards import get_board
from k210sim.board import SimBoard
from k210sim.events import EventLog
from k210sim.faults import FaultHooks
from k210sim.isp.target import IspFaults, IspTarget
from k210sim.program import SilentProgram
from k210sim.storage import BoardStorage
from k210sim.uart import SerialLine


class LoopPort:
    def __init__(self, line: SerialLine, board: SimBoard | None, baud: int = 115200,
                 lines: bool = True, timeout: float = 0.05) -> None:
        self.name = "loop"
        self.port = "loop://sim"
        self._line = line
        self._board = board
        self._baud = baud
        self._lines = lines
        self.timeout = timeout
        self._rx = bytearray()
        self._cond = threading.Condition()
        self._dtr = self._rts = False
        self.is_open = True
        line.attach_frontend(self)

    # FrontEnd side
    def host_baud(self) -> int:
        return self._baud

    def send(self, data: bytes) -> None:
        with self._cond:
            self._rx += data
            self._cond.notify_all()

    # pyserial side
    @property
    def baudrate(self) -> int:
        return self._baud

    @baudrate.setter
    def baudrate(self, baud: int) -> None:
        if baud != self._baud:
            self._baud = baud
            self._line.note_host_baud(self.name, baud)

    def write(self, data: bytes) -> int:
        self._line.from_host(bytes(data), self)
        return len(data)

    def flush(self) -> None:
        pass

    def read(self, n: int = 1) -> bytes:
        deadline = time.monotonic() + (self.timeout or 0)
        with self._cond:
            while not self._rx:
                left = deadline - time.monotonic()
                if left <= 0:
                    return b""
                self._cond.wait(left)
            out = bytes(self._rx[:n])
            del self._rx[:n]
            return out

    @property
    def in_waiting(self) -> int:
        with self._cond:
            return len(self._rx)

    def reset_input_buffer(self) -> None:
        with self._cond:
            self._rx.clear()

    def _set(self, name: str, value: bool) -> None:
        if not self._lines or self._board is None:
            raise OSError(errno.ENOTTY, "Inappropriate ioctl for device")
        setattr(self, "_" + name, bool(value))
        self._board.set_lines(**{name: bool(value)}, source=self.name)

    dtr = property(lambda self: self._dtr, lambda self, v: self._set("dtr", v))
    rts = property(lambda self: self._rts, lambda self, v: self._set("rts", v))

    def close(self) -> None:
        self.is_open = False
        self._line.detach_frontend(self)


class LoopRig:
    def __init__(self, board: SimBoard, line: SerialLine, events: EventLog, storage: BoardStorage):
        self.board, self.line, self.events, self.storage = board, line, events, storage

    def port(self, **kw) -> LoopPort:
        return LoopPort(self.line, self.board, **kw)

    def enter_isp(self) -> None:
        self.board.press_reset(boot=True)
        time.sleep(0.05)

    def wait_mode(self, mode: str, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            st = self.board.status()
            if st["mode"] == mode or time.monotonic() > deadline:
                return st
            time.sleep(0.02)


def isp_only_factory(mode, ctx, profile):
    """Program factory for SimServer in ISP tests: the real ISP, a silent firmware (the boot
    event and status still name the profile the ROM found)."""
    return IspTarget(ctx) if mode == "isp" else SilentProgram(ctx)


@contextmanager
def loop_rig(state: Path, board: str = "maix-bit", isp_faults: IspFaults | None = None,
             pace: bool = False, isp: bool = True):
    """A powered SimBoard; ``isp=False`` runs a silent program where the ROM would be."""
    spec = get_board(board)
    events = EventLog()
    faults = FaultHooks()
    storage = BoardStorage(state, spec.flash_size, faults)
    line = SerialLine(events, faults, pace=pace)

    def factory(mode, ctx, profile):
        if mode == "isp":
            return IspTarget(ctx, isp_faults) if isp else None
        return SilentProgram(ctx)     # the firmware's REPL is not what these tests look at

    sim = SimBoard(spec, storage, line, events, faults, state, program_factory=factory)
    try:
        sim.power(True)
        yield LoopRig(sim, line, events, storage)
    finally:
        sim.close()
        line.close()
        storage.flash.close()
