"""``sim``: the simulator's control socket, playing a network power switch. The only place
outside tests/ that talks to the simulator. A rig that is not simulated (a simulator behind
ser2net, say) names the socket with ``power.control``."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from hil.drivers.power.base import POWER, Note, PowerContext, PowerDriver, PowerSpec, RigFacts, _quiet
from hil.drivers.schema import Key
from hil.errors import HilError, PowerError


@POWER.register
class SimPower(PowerDriver):
    """The simulator's control socket as a network power switch (and its reset button)."""

    name = "sim"
    keys = (Key("control", str, "", help="control socket of a simulator someone else runs (rigs without [sim])"),)
    can_reset = True
    can_power = True
    simulated = True

    @classmethod
    def check(cls, spec: PowerSpec, rig: RigFacts) -> tuple[str, str] | None:
        if rig.is_sim and spec.control:
            return ("control", "a simulated rig uses its own simulator's control socket; remove the key")
        if not rig.is_sim and not spec.control:
            return ("driver", "'sim' on a rig that is not simulated needs power.control = the simulator's "
                              "control socket (or add a [sim] table)")
        return None

    @classmethod
    def create(cls, spec: PowerSpec, ctx: PowerContext) -> "SimPower":
        control = ctx.control or (Path(spec.control) if spec.control else None)
        if control is None:
            raise PowerError(f"rig {ctx.rig_name}: sim power needs the simulator's control socket (not started)")
        return cls(control, ctx.rig_name, ctx.note)

    def __init__(self, control_path: Path, rig_name: str = "", note: Note = _quiet,
                 off_time: float = 0.2) -> None:
        super().__init__(rig_name, note)
        from hil.simcontrol import SimControl
        self.client = SimControl(control_path)
        self.off_time = off_time

    def _call(self, what: str, fn: Callable[[], object]) -> None:
        self._run(what, fn, HilError)

    def on(self) -> None:
        self._call("on", lambda: self.client.power(True))

    def off(self) -> None:
        self._call("off", lambda: self.client.power(False))

    def cycle(self) -> None:
        self.off()
        time.sleep(self.off_time)
        self.on()

    def reset(self) -> None:
        self._call("reset button", lambda: self.client.reset())

    def enter_isp(self) -> None:
        """Reset with BOOT held: into the ISP ROM (for the flasher when the port has no DTR/RTS)."""
        self._call("reset into ISP", lambda: self.client.reset(boot=True))

    def set_sd(self, present: bool) -> None:
        """Insert or remove the simulated SD card (takes effect at the next boot)."""
        self._call(f"SD card {'in' if present else 'out'}", lambda: self.client.sd(present))

    def status(self) -> dict:
        try:
            return self.client.status()
        except HilError as exc:
            raise PowerError(f"rig {self.rig_name}: sim status: {exc}") from None
