"""``uhubctl``: ``uhubctl -l HUB -p PORT -a off|on|cycle`` on a switchable USB hub."""
from __future__ import annotations

import shlex

from hil.drivers.power.base import OFF_TIME, POWER, TIMEOUT, SpecPowerDriver, SwitchActions, run_command
from hil.drivers.schema import Key, filled


def _hub_port(value: int) -> str:
    return "" if value >= 1 else f"must be a hub port number >= 1, got {value}"


@POWER.register
class UhubctlPower(SwitchActions, SpecPowerDriver):
    name = "uhubctl"
    keys = (Key("hub", str, check=filled('"1-1.4", the hub location uhubctl lists')),
            Key("port", int, check=_hub_port, field="hub_port"),
            Key("uhubctl", str, "uhubctl", help="executable name or path"),
            TIMEOUT, OFF_TIME)
    can_reset = True
    can_power = True
    drops_port = True

    def argv(self, action: str) -> list[str]:
        argv = [self.spec.uhubctl, "-l", self.spec.hub, "-p", str(self.spec.hub_port), "-a", action]
        if action == "cycle":
            argv += ["-d", f"{self.spec.off_time:g}"]
        return argv

    def switch(self, action: str) -> None:
        argv = self.argv(action)
        self.note(f"power uhubctl {action}: {shlex.join(argv)}")
        run_command(argv, self.spec.timeout, f"rig {self.rig_name}: uhubctl {action} "
                                             f"(hub {self.spec.hub} port {self.spec.hub_port})")
