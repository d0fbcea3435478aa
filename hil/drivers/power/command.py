"""``command``: argv lists for on/off (and optionally cycle), run without a shell, with a timeout."""
from __future__ import annotations

import shlex
import time

from hil.drivers.power.base import OFF_TIME, POWER, TIMEOUT, SpecPowerDriver, run_command
from hil.drivers.schema import Key


@POWER.register
class CommandPower(SpecPowerDriver):
    name = "command"
    keys = (Key("on", "argv"), Key("off", "argv"),
            Key("cycle", "strs", (), help="optional; without it a cycle is off, off_time, on"),
            TIMEOUT, OFF_TIME)
    can_reset = True
    can_power = True
    drops_port = True   # a relay may take the USB-serial chip down with the board

    def _run(self, key: str, argv: tuple[str, ...]) -> None:
        self.note(f"power command {key}: {shlex.join(argv)}")
        run_command(argv, self.spec.timeout, f"rig {self.rig_name}: power.{key}")

    def on(self) -> None:
        self._run("on", self.spec.on)

    def off(self) -> None:
        self._run("off", self.spec.off)

    def cycle(self) -> None:
        if self.spec.cycle:
            self._run("cycle", self.spec.cycle)
            return
        self.off()
        time.sleep(self.spec.off_time)
        self.on()
