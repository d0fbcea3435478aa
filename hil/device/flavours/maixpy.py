"""MaixPy: MicroPython's raw REPL for booting and commands, the MicroPython device, the MaixPy KPU."""
from __future__ import annotations

from typing import Any

from hil.board.state import BoardEvents
from hil.console import Console
from hil.device.flavours import FLAVOURS
from hil.device.micropython.boot import MicroPythonBoot
from hil.device.micropython.device import MicroPythonDevice
from hil.device.micropython.repl import Repl


@FLAVOURS.register
class MaixPy:
    name = "maixpy"

    def __init__(self, rig: Any, console: Console, events: BoardEvents) -> None:
        self.rig = rig
        self.repl = Repl(console, events)
        self.boot = MicroPythonBoot(self.repl, rig.name)

    def device(self, lifecycle: Any) -> MicroPythonDevice:
        return MicroPythonDevice(lifecycle, self.repl, self.rig)
