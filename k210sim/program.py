"""What runs on the simulated CPU: the program protocol, its context, and the silent program.

A *program* is the firmware the chip is executing: the ISP ROM (k210sim.isp.target), MaixPy
(k210sim.maixpy), or nothing useful (SilentProgram: a blank or corrupt flash, a chip the ROM
will not boot). The board (k210sim.board) runs one program per boot in its own CPU thread and
stops it on reset or power-off.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:  # imported for annotations only: keeps this module free of import cycles
    from k210sim.boards import BoardSpec
    from k210sim.events import EventLog
    from k210sim.faults import FaultHooks
    from k210sim.storage import BoardStorage
    from k210sim.uart import Uart


class ProgramHalted(BaseException):
    """Raised inside a program's thread when the board halts (reset, power-off, reboot).

    A BaseException so that ``except Exception`` in emulated firmware code does not swallow it.
    """


class SimProgram(Protocol):
    def run(self) -> None:
        """Called in the board's CPU thread; returns, or raises ProgramHalted."""

    def halt(self) -> None:
        """Called from another thread: make run() stop promptly (< 0.5 s)."""


@dataclass
class SimContext:
    """Everything a program may touch: the board it runs on and its peripherals.

    ``request_reset(reason)`` asks the board for a chip reset (machine.reset(), a new
    gc_heap_size). It returns at once; from then on this boot's Uart raises ProgramHalted on
    every call, and the board halts the program and reboots the chip (sampling BOOT, like any
    reset) from its own thread. A program should simply return or let ProgramHalted propagate.
    """
    board: BoardSpec
    uart: Uart
    storage: BoardStorage
    events: EventLog
    request_reset: Callable[[str], None]
    state_dir: Path
    faults: FaultHooks


class SilentProgram:
    """A CPU that runs nothing the host can see: a blank flash, a rejected image, a missing ROM."""

    def __init__(self, ctx: SimContext | None = None) -> None:
        self._stop = threading.Event()

    def run(self) -> None:
        self._stop.wait()

    def halt(self) -> None:
        self._stop.set()


# What the board calls to pick a program: (mode, ctx, profile) -> program, mode "firmware"|"isp".
ProgramFactory = Callable[[str, SimContext, object], SimProgram]
