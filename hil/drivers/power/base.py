"""What every power driver is: capabilities, TOML keys, how it is made, and the registry.

Capabilities let the board's recovery ladder skip rungs a rig lacks: ``can_reset`` (force a hard
reset of the chip), ``can_power`` (really remove power), ``drops_port`` (the USB-serial port goes
away with the power, so the link is closed and reopened around a cycle), ``simulated`` (can drive
a simulated rig) and ``modem_lines`` (needs DTR/RTS on the port).

``start()`` is the board's start-up hook: called once when the board is opened, before the
link. A driver that runs the board itself (the ``qemu`` emulator) starts it there and returns
the console's URL; ``console_url`` says where the console is after a power cycle moved it.

A driver class declares ``keys`` (hil.drivers.schema.Key) for its [power] table, optionally a
``check`` of the table against the rest of the rig, and ``create(spec, ctx)``, which makes the
driver for an opened board.
"""
from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hil.drivers.registry import Registry
from hil.drivers.schema import REQUIRED, Key, Options, OptionsSpec, pause, read_options, seconds
from hil.errors import PowerError
from hil.tomlcheck import Table

Note = Callable[[str], None]
POWER: Registry = Registry("power", "hil.drivers.power", "k210_hil.power_drivers")

TIMEOUT = Key("timeout", float, 30.0, seconds, help="seconds a power command may take")
OFF_TIME = Key("off_time", float, 1.0, pause, help="seconds the board stays off in a cycle")


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class PowerSpec(OptionsSpec):
    """The [power] table: the driver's name and its options (``spec.off_time`` reads an option)."""
    driver: str
    options: Options = field(default_factory=Options)
    _label = "power driver"


@dataclass(frozen=True)
class RigFacts:
    """What a driver may know of the rest of the rig while its table is read."""
    is_sim: bool = False
    transport: str = ""          # the simulated rig's front end ("pty", "rfc2217"), else ""
    labgrid_place: str = ""      # [labgrid].place, if the rig has that table
    emulator: str = ""           # the rig's emulator table ("qemu"), if it has one


@dataclass
class PowerContext:
    """What a driver gets when a board is opened."""
    rig: Any                                   # hil.rig.RigSpec
    link: Callable[[], Any] = lambda: None     # the open hil.link.Link (or None)
    control: Path | None = None                # the simulator's control socket, for sim rigs
    note: Note = _quiet                        # a line in the serial log
    state: Path | None = None                  # where an emulated board keeps its flash and card

    @property
    def rig_name(self) -> str:
        return self.rig.name


class PowerDriver:
    """Base: every operation unsupported. Drivers override what they can do."""

    name = "none"
    keys: tuple[Key, ...] = ()
    can_reset = False
    can_power = False
    drops_port = False
    simulated = False        # may drive a simulated rig
    modem_lines = False      # needs DTR/RTS on the serial port

    def __init__(self, rig_name: str = "", note: Note = _quiet) -> None:
        self.rig_name = rig_name
        self.note = note

    @classmethod
    def create(cls, spec: PowerSpec, ctx: PowerContext) -> "PowerDriver":
        return cls(ctx.rig_name, ctx.note)

    @classmethod
    def spec_of(cls, **options: Any) -> PowerSpec:
        """A PowerSpec for this driver from option values, declared defaults filled in (for code
        that makes a driver without a rig file)."""
        known = {key.option: key for key in cls.keys}
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise TypeError(f"power driver {cls.name!r}: no option {unknown[0]!r} (options: {', '.join(known)})")
        values = {}
        for name, key in known.items():
            if name in options:
                values[name] = options[name]
            elif key.default is not REQUIRED and not callable(key.default):
                values[name] = key.default
            else:
                raise TypeError(f"power driver {cls.name!r}: option {name!r} is required")
        return PowerSpec(cls.name, Options(values))

    @classmethod
    def check(cls, spec: PowerSpec, rig: RigFacts) -> tuple[str, str] | None:
        """(key, problem) when this [power] table does not fit the rest of the rig."""
        return None

    def start(self) -> str | None:
        """At board open, before the link: start a board this driver runs itself; its console
        URL (None: the rig's serial.port is the console)."""
        return None

    @property
    def console_url(self) -> str | None:
        """The console's URL now, when this driver decides it (an emulator); else None."""
        return None

    def _run(self, what: str, fn: Callable[[], object],
             errors: type[Exception] | tuple[type[Exception], ...]) -> None:
        """Do one step, noted in the serial log; ``errors`` it raises become one PowerError line
        naming the rig and the step."""
        self.note(f"power {self.name}: {what}")
        try:
            fn()
        except errors as exc:
            raise PowerError(f"rig {self.rig_name}: {self.name} power {what}: {exc}") from None

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


class SpecPowerDriver(PowerDriver):
    """A driver that works from its [power] options: ``Driver(spec, rig_name, note)``."""

    def __init__(self, spec: PowerSpec, rig_name: str = "", note: Note = _quiet) -> None:
        super().__init__(rig_name, note)
        self.spec = spec

    @classmethod
    def create(cls, spec: PowerSpec, ctx: PowerContext) -> "PowerDriver":
        return cls(spec, ctx.rig_name, ctx.note)


class SwitchActions:
    """on, off and cycle as one action each of a switch: ``switch("on" | "off" | "cycle")``."""

    def switch(self, action: str) -> None:
        raise NotImplementedError

    def on(self) -> None:
        self.switch("on")

    def off(self) -> None:
        self.switch("off")

    def cycle(self) -> None:
        self.switch("cycle")


def parse_power(top: Table, rig: RigFacts) -> PowerSpec:
    """Read and check [power] through the registry: the driver's keys, nothing else."""
    table = top.sub("power")
    name = table.take("driver", str)
    if name not in POWER:
        raise table.fail("driver", f"{name!r} is not one of: {', '.join(POWER.names())}")
    cls = POWER.get(name)
    spec = PowerSpec(name, read_options(table, cls.keys, rig))
    table.done()
    if rig.is_sim and not cls.simulated:
        allowed = ", ".join(n for n in POWER.names() if POWER.get(n).simulated)
        raise table.fail("driver", f"{name!r} cannot drive a simulated rig (allowed: {allowed})")
    if rig.is_sim and cls.modem_lines and rig.transport == "pty":
        raise table.fail("driver", f"{name!r} needs sim.transport = \"rfc2217\" (a pty cannot carry DTR/RTS)")
    problem = cls.check(spec, rig)
    if problem is not None:
        raise table.fail(*problem)
    return spec


def make_power(rig: Any, link: Callable[[], Any] = lambda: None, control_path: Path | None = None,
               note: Note = _quiet, state: Path | None = None) -> PowerDriver:
    """The rig's power driver. ``link`` gives the open link (dtr-rts); ``control_path`` the
    simulator's control socket (sim); ``state`` a directory for an emulated board (qemu)."""
    cls = POWER.get(rig.power.driver)
    return cls.create(rig.power, PowerContext(rig, link, Path(control_path) if control_path else None, note,
                                              Path(state) if state else None))


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
