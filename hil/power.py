"""Power drivers: how a rig removes power from its board, or at least resets it.

Each driver says what it can do, so the board's recovery ladder skips rungs a rig lacks:
``can_reset`` (force a hard reset of the chip) and ``can_power`` (really remove power).
``drops_port`` says the USB-serial port goes away with the power, so the board must close and
reopen its link around a cycle.

- none:     nothing; the ladder stops at soft reset.
- dtr-rts:  the board's auto-reset circuit, played with the board's boot sequence
            (hil/boards.py SEQUENCES, STEP_PAUSE_S between steps). A reset, not a power cycle.
- command:  argv lists for on/off (and optionally cycle), run without a shell, with a timeout.
- uhubctl:  ``uhubctl -l HUB -p PORT -a off|on|cycle`` on a switchable USB hub.
- sim:      the simulator's control socket, playing a network power switch. The only place
            outside tests/ that talks to the simulator. A rig that is not simulated (a simulator
            behind ser2net, say) names the socket with ``power.control``.
- labgrid:  the labgrid place's power resource through labgrid's own power driver
            (NetworkPowerPort -> NetworkPowerDriver, ...), see hil/farm/labgrid.py.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path
from typing import Callable

from hil.boards import SEQUENCES, STEP_PAUSE_S, BoardSpec
from hil.errors import HilError, PowerError
from hil.link import Link
from hil.rig import DEFAULT_COORDINATOR, PowerSpec, RigSpec

Note = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


class PowerDriver:
    """Base: every operation unsupported. Drivers override what they can do."""

    name = "none"
    can_reset = False
    can_power = False
    drops_port = False

    def __init__(self, rig_name: str = "", note: Note = _quiet) -> None:
        self.rig_name = rig_name
        self.note = note

    def _unsupported(self, what: str) -> PowerError:
        return PowerError(f"rig {self.rig_name}: power driver {self.name!r} cannot {what}")

    def on(self) -> None:
        raise self._unsupported("switch the board on")

    def off(self) -> None:
        raise self._unsupported("switch the board off")

    def cycle(self) -> None:
        raise self._unsupported("power-cycle the board")

    def reset(self) -> None:
        """A hard reset of the chip (power cycle when that is all the driver has)."""
        if self.can_power:
            self.cycle()
            return
        raise self._unsupported("reset the board")

    def close(self) -> None:
        pass


class NoPower(PowerDriver):
    name = "none"


class DtrRtsPower(PowerDriver):
    """Reset through DTR/RTS and the board's auto-reset circuit."""

    name = "dtr-rts"
    can_reset = True

    def __init__(self, board: BoardSpec, link: Callable[[], Link | None], rig_name: str = "",
                 note: Note = _quiet, step_pause: float = STEP_PAUSE_S) -> None:
        super().__init__(rig_name, note)
        self.board = board
        self._link = link
        self.step_pause = step_pause

    def _lines(self) -> Link:
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


def run_command(argv: tuple[str, ...] | list[str], timeout: float, what: str) -> str:
    """Run argv (no shell); stdout. PowerError names the command and its stderr tail."""
    shown = shlex.join(argv)
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise PowerError(f"{what}: command not found: {argv[0]!r} (in `{shown}`)") from None
    except PermissionError:
        raise PowerError(f"{what}: not executable: {argv[0]!r} (in `{shown}`)") from None
    except subprocess.TimeoutExpired:
        raise PowerError(f"{what}: `{shown}` did not finish within {timeout:g} s") from None
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout or "").split())[-200:]
        raise PowerError(f"{what}: `{shown}` exited with status {done.returncode}: {tail or '(no output)'}")
    return done.stdout


class CommandPower(PowerDriver):
    name = "command"
    can_reset = True
    can_power = True
    drops_port = True   # a relay may take the USB-serial chip down with the board

    def __init__(self, spec: PowerSpec, rig_name: str = "", note: Note = _quiet) -> None:
        super().__init__(rig_name, note)
        self.spec = spec

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


class UhubctlPower(PowerDriver):
    name = "uhubctl"
    can_reset = True
    can_power = True
    drops_port = True

    def __init__(self, spec: PowerSpec, rig_name: str = "", note: Note = _quiet) -> None:
        super().__init__(rig_name, note)
        self.spec = spec

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


class SimPower(PowerDriver):
    """The simulator's control socket as a network power switch (and its reset button)."""

    name = "sim"
    can_reset = True
    can_power = True

    def __init__(self, control_path: Path, rig_name: str = "", note: Note = _quiet,
                 off_time: float = 0.2) -> None:
        super().__init__(rig_name, note)
        from hil.simcontrol import SimControl
        self.client = SimControl(control_path)
        self.off_time = off_time

    def _call(self, what: str, fn: Callable[[], object]) -> None:
        self.note(f"power sim: {what}")
        try:
            fn()
        except HilError as exc:
            raise PowerError(f"rig {self.rig_name}: sim power {what}: {exc}") from None

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


class LabgridPower(PowerDriver):
    """The power resource of a labgrid place, switched by labgrid's power driver for it.

    The place must be acquired by this host/user (the plugin acquires it for the run; or
    ``labgrid-client -p PLACE acquire``). The labgrid session is opened on first use, so a rig
    whose tests never switch power never talks to the coordinator from a worker.
    """

    name = "labgrid"
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

    def _switch(self, what: str) -> None:
        driver = self._power()
        self.note(f"power labgrid: {what} (place {self.place}, {type(driver).__name__})")
        try:
            getattr(driver, what)()
        except HilError:
            raise
        except Exception as exc:  # noqa: BLE001 - labgrid drivers raise many kinds; one line
            text = " ".join(str(exc).split()) or type(exc).__name__
            raise PowerError(f"rig {self.rig_name}: labgrid power {what} (place {self.place}): {text}") from None

    def on(self) -> None:
        self._switch("on")

    def off(self) -> None:
        self._switch("off")

    def cycle(self) -> None:
        self._switch("cycle")

    def close(self) -> None:
        if self._place is not None:
            from hil.farm.labgrid import detach
            detach(self._place)
        self._place = self._driver = None


def make_power(rig: RigSpec, link: Callable[[], Link | None], control_path: Path | None = None,
               note: Note = _quiet) -> PowerDriver:
    """The rig's power driver. ``link`` gives the open link (dtr-rts); ``control_path`` the
    simulator's control socket (sim)."""
    spec = rig.power
    if spec.driver == "none":
        return NoPower(rig.name, note)
    if spec.driver == "dtr-rts":
        return DtrRtsPower(rig.board, link, rig.name, note)
    if spec.driver == "command":
        return CommandPower(spec, rig.name, note)
    if spec.driver == "uhubctl":
        return UhubctlPower(spec, rig.name, note)
    if spec.driver == "sim":
        if control_path is None and spec.control:
            control_path = Path(spec.control)
        if control_path is None:
            raise PowerError(f"rig {rig.name}: sim power needs the simulator's control socket (not started)")
        return SimPower(Path(control_path), rig.name, note)
    if spec.driver == "labgrid":
        coordinator = rig.labgrid.address if rig.labgrid is not None else ""
        return LabgridPower(spec.place, rig.name, note, coordinator=coordinator, off_time=spec.off_time)
    raise PowerError(f"rig {rig.name}: unknown power driver {spec.driver!r}")
