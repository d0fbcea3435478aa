"""``dtr-rts``: the board's auto-reset circuit, played with the board's boot sequence
(hil/boards.py SEQUENCES, STEP_PAUSE_S between steps). A reset, not a power cycle."""
from __future__ import annotations

import time
from typing import Any, Callable

from hil.boards import SEQUENCES, STEP_PAUSE_S, BoardSpec
from hil.drivers.power.base import POWER, Note, PowerContext, PowerDriver, PowerSpec, _quiet
from hil.errors import PowerError


@POWER.register
class DtrRtsPower(PowerDriver):
    """Reset through DTR/RTS and the board's auto-reset circuit."""

    name = "dtr-rts"
    can_reset = True
    simulated = True
    modem_lines = True

    def __init__(self, board: BoardSpec, link: Callable[[], Any], rig_name: str = "",
                 note: Note = _quiet, step_pause: float = STEP_PAUSE_S) -> None:
        super().__init__(rig_name, note)
        self.board = board
        self._link = link
        self.step_pause = step_pause

    @classmethod
    def create(cls, spec: PowerSpec, ctx: PowerContext) -> "DtrRtsPower":
        return cls(ctx.rig.board, ctx.link, ctx.rig_name, ctx.note)

    def _lines(self) -> Any:
        link = self._link()
        if link is None or not link.is_open:
            raise PowerError(f"rig {self.rig_name}: dtr-rts power needs the serial port open")
        return link

    def play(self, sequence: str) -> bool:
        """Play a SEQUENCES entry; False when the port has no modem lines (nothing happened)."""
        link = self._lines()
        self.note(f"power dtr-rts: {sequence}")
        wired = True
        for first, v1, second, v2 in SEQUENCES[sequence]:
            wired = link.set_line(first, v1) and wired
            wired = link.set_line(second, v2) and wired
            time.sleep(self.step_pause)
        return wired

    def reset(self) -> None:
        if not self.play(self.board.boot_sequence):
            raise PowerError(f"rig {self.rig_name}: dtr-rts reset impossible: {self._lines().url} "
                             "has no DTR/RTS (a pty); use a power driver such as sim or uhubctl")

    def cycle(self) -> None:
        self.note("power dtr-rts: no power switch on this rig; a cycle is a hard reset")
        self.reset()

    def off(self) -> None:
        """Hold the chip in reset (the nearest thing to off this driver has)."""
        link = self._lines()
        reset_line = self.board.reset_line
        other = "dtr" if reset_line == "rts" else "rts"
        link.set_line(other, False)
        link.set_line(reset_line, True)
        self.note("power dtr-rts: chip held in reset")

    def on(self) -> None:
        link = self._lines()
        link.set_line(self.board.reset_line, False)
        self.note("power dtr-rts: reset released")
