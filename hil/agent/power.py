"""The ``qemu`` power driver: the emulator process is the board's power supply.

on = start the emulator, off = stop it (by its own pid), cycle = off then on, reset = the reset
button (QMP system_reset; a fresh emulator when that fails, so a reset always brings the board
back). The console is a TCP socket that closes with the emulator, so ``drops_port`` is set: the
board layer reopens its link after off/on (the URL stays the same while the port is free; read
``url`` after ``on``).
"""
from __future__ import annotations

from pathlib import Path

from hil.agent.qemu import QemuBoard, QemuError
from hil.errors import PowerError
from hil.power import Note, PowerDriver


def _quiet(_: str) -> None:
    pass


class QemuPower(PowerDriver):
    name = "qemu"
    can_reset = True
    can_power = True
    drops_port = True

    def __init__(self, board: QemuBoard, rig_name: str = "", note: Note = _quiet) -> None:
        super().__init__(rig_name, note)
        self.board = board

    @classmethod
    def for_firmware(cls, elf: Path, state: Path, binary: str = "qemu-system-riscv64",
                     rig_name: str = "", note: Note = _quiet) -> "QemuPower":
        return cls(QemuBoard(elf, state, binary, note=note, name=f"rig {rig_name}" if rig_name else "qemu"),
                   rig_name, note)

    @property
    def url(self) -> str:
        """The console's ``socket://127.0.0.1:PORT`` while the emulator runs."""
        return self.board.url

    def _do(self, what: str, fn) -> None:
        self.note(f"power qemu: {what}")
        try:
            fn()
        except QemuError as exc:
            raise PowerError(f"rig {self.rig_name}: qemu power {what}: {exc}") from None

    def on(self) -> None:
        self._do("on", self.board.start)

    def off(self) -> None:
        self._do("off", self.board.stop)

    def cycle(self) -> None:
        self._do("cycle", lambda: (self.board.stop(), self.board.start()))

    def reset(self) -> None:
        self._do("reset button", self.board.reset)

    def close(self) -> None:
        self.board.stop()
