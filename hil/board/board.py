"""Board: an opened rig. The simulator (sim rigs), the link, the power driver, the firmware
flavour's console, and the lifecycle that owns the board's state; the device API on top.

``Board(rig, results=...)`` starts the simulator for a sim rig (``python -m k210sim serve`` as a
child process, stopped by its pid), makes the power driver through the registry and calls its
start-up hook (an emulated rig's driver starts the emulator there and names the console), opens
the link and makes the flavour for the profile's family (hil.device.flavours). ``board.lifecycle`` starts,
resets, recovers and reflashes it; ``board.device`` is the device API, which gets the lifecycle.

``Board.port`` is the port as logs and run records may show it (passwords in a URL masked,
hil.link.redact_url); the real URL is only used to open it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hil.board.lifecycle import Lifecycle
from hil.board.simprocess import SimProcess
from hil.board.state import BoardEvents
from hil.console import Console
from hil.device.drivers import Drivers
from hil.device.flavours import FLAVOURS
from hil.drivers.power import PowerDriver, make_power
from hil.errors import LinkError, SimError
from hil.link import Link, SerialLog, redact_url
from hil.rig import RigSpec
from hil.steps import Steps


class Board:
    """An opened rig. Use ``with Board(rig, results=...) as board: board.lifecycle.start(); ...``."""

    def __init__(self, rig: RigSpec, results: Path | None = None, log: SerialLog | None = None,
                 sim_state: Path | None = None, sim_endpoints: dict | None = None) -> None:
        """``sim_endpoints``: attach a sim rig to a simulator that is already running (its
        ``hil sim serve`` JSON line, or ``SimServer.endpoints``) instead of starting one."""
        self.rig = rig
        self.sim_endpoints = sim_endpoints
        self.profile = rig.profile
        self.results = Path(results) if results is not None else Path("results")
        self._first_log = log
        self.sim_state = Path(sim_state) if sim_state else self.results / "sim-state" / rig.name
        self.sim: SimProcess | None = None
        self.link: Link | None = None
        self.console: Console | None = None
        self.power: PowerDriver | None = None
        self.flavour: Any = None
        self.events = BoardEvents()
        self.steps = Steps()
        self._lifecycle: Lifecycle | None = None
        self._port_url = rig.serial.port
        self._device: Any = None
        self._drivers: Any = None

    # -- opening and closing -----------------------------------------------------------------
    def open(self) -> "Board":
        """Start the simulator (sim rigs), make the power driver and run its start-up hook (an
        emulated board starts), open the port, make the flavour and the lifecycle.

        A port that cannot be opened is a LinkError naming it: nothing else was touched.
        """
        try:
            control = None
            if self.rig.sim is not None:
                endpoints = self.sim_endpoints
                if endpoints is None:
                    self.sim = SimProcess(self.sim_state, self.rig.board.name,
                                          self.rig.sim.build, self.rig.sim.pace)
                    endpoints = self.sim.start()
                control = endpoints.get("control")
                self._port_url = self._sim_port(endpoints)
            self.power = make_power(self.rig, lambda: self.link, Path(control) if control else None, self.note,
                                    state=self.results / "emulator-state" / self.rig.name)
            self._port_url = self.power.start() or self._port_url
            self.link = Link(self._port_url, self.rig.serial.baud, self._first_log, name=self.rig.name)
            self.events.note = self.note
            self.steps.note = self.note
            self.console = Console(self.link)
            self.flavour = FLAVOURS.get(self.profile.family)(self.rig, self.console, self.events)
            self._lifecycle = Lifecycle(self.rig, self.link, self.flavour.boot, self.power, self.events,
                                        self.steps, self._port_url, self.results)
            if self.rig.sim is not None and hasattr(self.power, "set_sd"):
                self.power.set_sd(self.rig.sim.sd)
        except BaseException:
            self.close()
            raise
        return self

    def _sim_port(self, endpoints: dict) -> str:
        transport = self.rig.sim.transport if self.rig.sim else "pty"
        port = endpoints.get("rfc2217") if transport == "rfc2217" else endpoints.get("pty")
        if not port:
            raise SimError(f"rig {self.rig.name}: the simulator offers no {transport} endpoint ({endpoints})")
        return port

    @property
    def port(self) -> str:
        """The serial port, fit for logs and run records (secrets masked)."""
        return redact_url(self._port_url)

    def close(self) -> None:
        if self.link is not None:
            self.link.close()
        if self.power is not None:
            self.power.close()
        if self.sim is not None:
            self.sim.stop()
            self.sim = None

    def __enter__(self) -> "Board":
        return self.open() if self.link is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- logging -----------------------------------------------------------------------------
    def note(self, text: str) -> None:
        if self.link is not None:
            self.link.note(text)

    @property
    def log_path(self) -> Path | None:
        return self.link.log_path if self.link else None

    # -- what is built on the opened board -----------------------------------------------------
    @property
    def lifecycle(self) -> Lifecycle:
        if self._lifecycle is None:
            raise LinkError(f"rig {self.rig.name}: board not opened")
        return self._lifecycle

    @property
    def repl(self) -> Any:
        """The MicroPython raw REPL (None on a flavour without one)."""
        return getattr(self.flavour, "repl", None)

    @property
    def device(self) -> Any:
        """The device API (hil.device.api.Device) of this board's firmware flavour."""
        if self._device is None:
            self._device = self.flavour.device(self.lifecycle)
        return self._device

    @property
    def drivers(self) -> Drivers:
        """The domain drivers on the device: kpu, files, models, flash, edges."""
        if self._drivers is None:
            self._drivers = Drivers(self.device, self.profile)
        return self._drivers

    @property
    def firmware_version(self) -> str:
        return self._lifecycle.firmware_version if self._lifecycle else ""

    @property
    def banner(self) -> str:
        return self._lifecycle.banner if self._lifecycle else ""

    @property
    def recoveries(self) -> list[str]:
        return self._lifecycle.recoveries if self._lifecycle else []
