"""``uhubctl``: ``uhubctl -l HUB -p PORT -a off|on|cycle`` on a switchable USB hub."""
from __future__ import annotations

import shlex

from hil.drivers.power.base import OFF_TIME, POWER, TIMEOUT, Note, PowerContext, PowerDriver, PowerSpec, \
    _quiet, run_command
from hil.drivers.schema import Key, filled


def _hub_port(value: int) -> str:
    return "" if value >= 1 else f"must be a hub port number >= 1, got {value}"


@POWER.register
class UhubctlPower(PowerDriver):
    name = "uhubctl"
    keys = (Key("hub", str, check=filled('"1-1.4", the hub location uhubctl lists')),
            Key("port", int, check=_hub_port, field="hub_port"),
            Key("uhubctl", str, "uhubctl", help="executable name or path"),
            TIMEOUT, OFF_TIME)
    can_reset = True
    can_power = True
    drops_port = True

    def __init__(self, spec: PowerSpec, rig_name: str = "", note: Note = _quiet) -> None:
        super().__init__(rig_name, note)
        self.spec = spec

    @classmethod
    def create(cls, spec: PowerSpec, ctx: PowerContext) -> "UhubctlPower":
        return cls(spec, ctx.rig_name, ctx.note)

    def argv(self, action: str) -> list[str]:
        argv = [self.spec.uhubctl, "-l", self.spec.hub, "-p", str(self.spec.hub_port), "-a", action]
        if action == "cycle":
            argv += ["-d", f"{self.spec.off_time:g}"]
        return argv

    def _run(self, action: str) -> None:
        argv = self.argv(action)
        self.note(f"power uhubctl {action}: {shlex.join(argv)}")
        run_command(argv, self.spec.timeout, f"rig {self.rig_name}: uhubctl {action} "
                                             f"(hub {self.spec.hub} port {self.spec.hub_port})")

    def on(self) -> None:
        self._run("on")

    def off(self) -> None:
        self._run("off")

    def cycle(self) -> None:
        self._run("cycle")
