"""``labgrid``: the power resource of a labgrid place, switched by labgrid's own power driver for
it (NetworkPowerPort -> NetworkPowerDriver, ...), see hil/farm/labgrid.py."""
from __future__ import annotations

import os

from hil.drivers.power.base import OFF_TIME, POWER, Note, PowerContext, PowerDriver, PowerSpec, SwitchActions, _quiet
from hil.drivers.schema import REQUIRED, Key, filled
from hil.errors import HilError, PowerError
from hil.rig import DEFAULT_COORDINATOR


@POWER.register
class LabgridPower(SwitchActions, PowerDriver):
    """The power resource of a labgrid place, switched by labgrid's power driver for it.

    The place must be acquired by this host/user (the plugin acquires it for the run; or
    ``labgrid-client -p PLACE acquire``). The labgrid session is opened on first use, so a rig
    whose tests never switch power never talks to the coordinator from a worker.
    """

    name = "labgrid"
    keys = (Key("place", str, lambda rig: rig.labgrid_place or REQUIRED,
                check=filled('"bench-7", the labgrid place whose power to switch')),
            OFF_TIME)
    can_reset = True
    can_power = True

    def __init__(self, place: str, rig_name: str = "", note: Note = _quiet, coordinator: str = "",
                 off_time: float = 1.0) -> None:
        super().__init__(rig_name, note)
        self.place = place
        self.coordinator = coordinator
        self.off_time = off_time
        self._driver = None
        self._place = None

    @classmethod
    def create(cls, spec: PowerSpec, ctx: PowerContext) -> "LabgridPower":
        coordinator = ctx.rig.labgrid.address if ctx.rig.labgrid is not None else ""
        return cls(spec.place, ctx.rig_name, ctx.note, coordinator=coordinator, off_time=spec.off_time)

    def _power(self):
        if self._driver is None:
            from hil.farm.labgrid import place_for   # lazy: only labgrid rigs need labgrid
            address = self.coordinator or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR
            try:
                self._place = place_for(address, self.place, self.rig_name, self.note)
                self._driver = self._place.power_driver(delay=self.off_time)
            except HilError as exc:
                raise PowerError(f"rig {self.rig_name}: labgrid power (place {self.place}): {exc}") from None
        return self._driver

    def switch(self, what: str) -> None:
        driver = self._power()
        self.note(f"power labgrid: {what} (place {self.place}, {type(driver).__name__})")
        try:
            getattr(driver, what)()
        except HilError:
            raise
        except Exception as exc:  # noqa: BLE001 - labgrid drivers raise many kinds; one line
            text = " ".join(str(exc).split()) or type(exc).__name__
            raise PowerError(f"rig {self.rig_name}: labgrid power {what} (place {self.place}): {text}") from None

    def close(self) -> None:
        if self._place is not None:
            from hil.farm.labgrid import detach
            detach(self._place)
        self._place = self._driver = None
