"""``qemu``: the emulator process is the board's power supply (rigs with a [qemu] table).

start (the board's start-up hook) = build the firmware if the rig asks for the reference one,
then start the emulator; on = start, off = stop (by its own pid), cycle = off then on, reset =
the reset button (QMP system_reset; a fresh emulator when that fails, so a reset always brings
the board back). The console is a TCP socket that closes with the emulator, so ``drops_port``
is set: the lifecycle reopens its link after off/on, at ``console_url``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from hil.drivers.power.base import POWER, Note, PowerContext, PowerDriver, PowerSpec, RigFacts, _quiet
from hil.errors import PowerError


@POWER.register
class QemuPower(PowerDriver):
    name = "qemu"
    can_reset = True
    can_power = True
    drops_port = True

    def __init__(self, board: Any = None, rig_name: str = "", note: Note = _quiet,
                 make_board: Callable[[], Any] | None = None) -> None:
        """``board``: a hil.agent.qemu.QemuBoard; or ``make_board`` makes it at start()."""
        super().__init__(rig_name, note)
        self.board = board
        self._make_board = make_board

    @classmethod
    def check(cls, spec: PowerSpec, rig: RigFacts) -> tuple[str, str] | None:
        if rig.emulator != "qemu":
            return ("driver", "'qemu' powers an emulated board: add a [qemu] table (the emulator it starts)")
        return None

    @classmethod
    def create(cls, spec: PowerSpec, ctx: PowerContext) -> "QemuPower":
        rig, state = ctx.rig, ctx.state or Path("results") / "emulator-state" / ctx.rig_name
        return cls(None, ctx.rig_name, ctx.note, make_board=lambda: _board_for(rig, state, ctx.note))

    @classmethod
    def for_firmware(cls, elf: Path, state: Path, binary: str = "qemu-system-riscv64",
                     rig_name: str = "", note: Note = _quiet, flash_image: Path | None = None) -> "QemuPower":
        from hil.agent.qemu import QemuBoard
        return cls(QemuBoard(elf, state, binary, note=note, name=f"rig {rig_name}" if rig_name else "qemu",
                             flash_image=flash_image), rig_name, note)

    def _board(self) -> Any:
        if self.board is None:
            if self._make_board is None:
                raise PowerError(f"rig {self.rig_name}: qemu power has no emulator to run")
            self.board = self._make_board()
        return self.board

    @property
    def url(self) -> str:
        """The console's ``socket://127.0.0.1:PORT`` while the emulator runs."""
        return self._board().url

    @property
    def console_url(self) -> str | None:
        board = self.board
        return board.url if board is not None and board.running else None

    def _do(self, what: str, fn: Callable[[], object]) -> None:
        from hil.agent.qemu import QemuError
        self._run(what, fn, QemuError)

    def start(self) -> str:
        """Build (or reuse) the firmware and start the emulator; its console URL."""
        board = self._board()
        self._do("start", board.start)
        return board.url

    def on(self) -> None:
        self._do("on", self._board().start)

    def off(self) -> None:
        self._do("off", self._board().stop)

    def cycle(self) -> None:
        board = self._board()
        self._do("cycle", lambda: (board.stop(), board.start()))

    def reset(self) -> None:
        self._do("reset button", self._board().reset)

    def close(self) -> None:
        if self.board is not None:
            self.board.stop()


def _board_for(rig: Any, state: Path, note: Note) -> Any:
    """The QemuBoard a rig's [qemu] table describes, its firmware built or taken from the cache."""
    from hil.agent.build import build_reference
    from hil.agent.qemu import QemuBoard
    spec = rig.emulator
    elf, flash_image = spec.elf, spec.flash_image
    if elf is None:
        firmware = build_reference()
        note(f"reference firmware {firmware.build_id}: {'built in %.1f s' % firmware.seconds if firmware.built else 'cached'} "
             f"({firmware.elf})")
        elf, flash_image = firmware.elf, flash_image or firmware.bin
    return QemuBoard(elf, state, spec.binary, note=note, name="qemu", flash_image=flash_image)
