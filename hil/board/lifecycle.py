"""The board's lifecycle: the one owner of its state, and the only code that resets it, reflashes
it, waits for its boot or climbs the recovery ladder (labgrid's strategy, for a K210 board).

States (hil.board.state.State): off, booting, friendly REPL, raw REPL, ISP, faulted. Every
transition that restarts the board publishes ``rebooted(cause)`` before the boot is waited for,
so whoever holds board-side state (REPL, transfer, KPU handles, file cache) drops it first.

- ``start()`` at session start: the REPL back whatever the board was doing, then a soft reset;
- ``ensure_ready()`` before a test: a round trip, the recovery ladder when it fails;
- ``soft_reset()``, ``power_cycle()``, ``await_reboot(cause)`` (a program that reboots it);
- ``recover(reason)``: hil.board.recovery; ``flash_firmware``/``flash_data``: hil.board.isp.

What a boot looks like on the wire is the firmware flavour's (``BootConsole``, e.g.
hil.device.micropython.boot); the lifecycle decides when. Every transition is a step
(hil.steps) in the serial log and the run record.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from hil.board.isp import IspTransitions
from hil.board.recovery import SOFT_RESET_WAIT_S, RecoveryLadder
from hil.board.state import (HARD_RESET, POWER_CYCLE, SOFT_RESET, UNEXPECTED, BoardEvents, RebootCause,
                             State, Subscriber)
from hil.errors import LinkError
from hil.steps import Steps


class BootInfo(Protocol):
    banner: str
    version: str


class BootConsole(Protocol):
    """What the lifecycle needs from the firmware's console (MicroPython's REPL, a C agent...)."""

    silent: bool

    def wait_boot(self, timeout: float, interrupt: bool = True) -> BootInfo: ...

    def command_mode(self) -> None: ...

    def answers(self, timeout: float = 2.0) -> bool: ...

    def still_answers(self) -> bool: ...

    def request_soft_reset(self) -> None: ...

    def kick(self, answer_s: float) -> bool: ...

    def await_reboot(self, timeout: float) -> bool: ...


class Lifecycle(RecoveryLadder, IspTransitions):
    """One opened board's state and transitions. Made by hil.board.Board."""

    def __init__(self, rig: Any, link: Any, boot: BootConsole, power: Any, events: BoardEvents,
                 steps: Steps, port_url: str, results: Path) -> None:
        self.rig = rig
        self.link = link
        self.boot = boot
        self.power = power
        self.events = events
        self.steps = steps
        self.port_url = port_url
        self.results = Path(results)
        self.banner = ""              # the last MicroPython version line seen
        self.firmware_version = ""    # version from that line (e.g. v0.6.2-75-g973361c0d)
        self.recoveries: list[str] = []

    # -- state and events ----------------------------------------------------------------------
    @property
    def state(self) -> State:
        return self.events.state

    def subscribe(self, subscriber: Subscriber) -> Subscriber:
        return self.events.subscribe(subscriber)

    def rebooted(self, cause: RebootCause) -> None:
        """Tell every subscriber the board restarted (the transitions below do it themselves)."""
        self.events.rebooted(cause)

    def note(self, text: str) -> None:
        self.link.note(text)

    @property
    def boot_timeout(self) -> float:
        return self.rig.serial.boot_timeout

    # -- booting -------------------------------------------------------------------------------
    def wait_boot(self, timeout: float | None = None, interrupt: bool = True) -> str:
        """Wait for the boot to reach its prompt; returns the firmware version it printed.

        Called on its own (a board that restarted for a reason nobody announced), it first
        tells the subscribers: an unexpected reboot."""
        if self.events.state is not State.BOOTING:
            self.events.rebooted(UNEXPECTED)
        boot = self.boot.wait_boot(self.boot_timeout if timeout is None else timeout, interrupt)
        self.banner, self.firmware_version = boot.banner, boot.version
        self.note(f"booted: {self.banner}")
        return self.firmware_version

    def _booted(self, cause: RebootCause, timeout: float | None = None) -> str:
        """The board is restarting for ``cause``: subscribers told, its boot awaited, command mode."""
        self.events.rebooted(cause)
        version = self.wait_boot(timeout)
        self.boot.command_mode()
        return version

    def responsive(self, timeout: float = 2.0) -> bool:
        """The command mode answers a round trip (entered afresh)."""
        return self.boot.answers(timeout)

    def start(self) -> None:
        """At session start: get the REPL back whatever the board was doing, then a soft boot."""
        with self.steps("start", rig=self.rig.name):
            self.note(f"start of session on rig {self.rig.name} ({self.link.url})")
            if not self.responsive():
                self.recover("no REPL at session start")
            self.soft_reset()

    def ensure_ready(self) -> None:
        """Cheap per-test check; climbs the recovery ladder when the REPL does not answer."""
        if not self.boot.still_answers():
            self.recover("REPL not answering before the test")

    def soft_reset(self) -> str:
        """Ctrl-D in the friendly REPL: a clean interpreter (models freed), boot.py/main.py again."""
        with self.steps("soft reset"):
            self.boot.request_soft_reset()
            return self._booted(SOFT_RESET, max(SOFT_RESET_WAIT_S, self.boot_timeout))

    def await_reboot(self, cause: RebootCause, timeout: float | None = None) -> bool:
        """A program now running may reboot the board (``utils.gc_heap_size(n)``): if it does,
        the reboot is announced and awaited (True); if the program ends instead, False."""
        with self.steps("await reboot", cause=cause.name) as step:
            if not self.boot.await_reboot(self.boot_timeout if timeout is None else timeout):
                step.args["rebooted"] = False
                return False
            self.note(f"board reboots: {cause}")
            self._booted(cause)
            return True

    # -- power -------------------------------------------------------------------------------
    def _reopen_after_power(self) -> None:
        if self.power.drops_port:
            self.reconnect()

    def reconnect(self, quietly: bool = False) -> None:
        """Close and reopen the serial link (a vanished USB port, a restarted server)."""
        try:
            # an emulator restarted by its power driver may have moved its console
            self.link.reopen(self.boot_timeout, self.power.console_url)
        except LinkError as exc:
            if not quietly:
                raise
            self.note(f"could not reopen {self.link.url}: {exc}")
        self.events.reconnected()

    def power_cycle(self) -> str:
        """Remove power (or the nearest the rig can do) and wait for a full boot."""
        power = self.power
        with self.steps("power cycle", driver=power.name):
            if power.can_power:
                self.note(f"power cycle ({power.name})")
                if power.drops_port:
                    self.link.close()
                self.events.enter(State.OFF)
                power.cycle()
                cause = POWER_CYCLE
            elif power.can_reset:
                self.note(f"power cycle: driver {power.name} cannot remove power; hard reset instead")
                power.reset()
                cause = HARD_RESET
            else:
                self.note("power cycle: rig has no power control; soft reset instead")
                return self.soft_reset()
            self._reopen_after_power()
            return self._booted(cause)

