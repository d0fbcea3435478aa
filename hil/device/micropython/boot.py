"""How a MicroPython board boots and answers, for the lifecycle (hil.board.lifecycle.BootConsole).

Only the lifecycle calls these: it decides when to reset, and this says what that looks like on
a MicroPython REPL (the boot log as hil.device.micropython.bootlog recognises it, Ctrl-C to
interrupt boot.py/main.py, Ctrl-D for a soft reset, the raw REPL as the command mode).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

from hil.board.state import State
from hil.device.micropython.bootlog import BANNER_RE, INIT_END, PROMPT
from hil.device.micropython.code.device import ROUND_TRIP, ROUND_TRIP_REPLY
from hil.device.micropython.repl import Repl
from hil.errors import BootTimeout, HilError, ReplProtocolError

MAIN_GRACE_S = 3.0       # after "init end", how long boot.py/main.py get before we interrupt them


@dataclass(frozen=True)
class Boot:
    banner: str          # the MicroPython version line
    version: str         # e.g. v0.6.2-75-g973361c0d


class MicroPythonBoot:
    def __init__(self, repl: Repl, rig_name: str) -> None:
        self.repl = repl
        self.console = repl.console
        self.rig_name = rig_name

    @property
    def silent(self) -> bool:
        """The last try to reach the REPL got no byte at all: the board is not listening."""
        return self.repl.silent

    def note(self, text: str) -> None:
        self.console.link.note(text)

    def wait_boot(self, timeout: float, interrupt: bool = True) -> Boot:
        """The banner and the ``>>> `` prompt; a boot.py/main.py that never ends is interrupted
        (Ctrl-C) once init is over, or when no banner came in time. BootTimeout shows the tail."""
        console = self.console
        deadline = time.monotonic() + timeout
        grace = min(MAIN_GRACE_S, max(0.5, timeout))
        interrupted = False
        init_seen: float | None = None
        what = f"rig {self.rig_name}: waiting for the MicroPython banner"
        while True:
            wait_until = deadline
            if interrupt and not interrupted and init_seen is not None:
                wait_until = min(deadline, init_seen + grace)
            patterns = [BANNER_RE] if init_seen is not None else [BANNER_RE, INIT_END]
            try:
                index = console.expect(patterns, max(0.05, wait_until - time.monotonic()),
                                       error=BootTimeout, what=what)
            except BootTimeout:
                if not interrupt or interrupted:
                    raise
                # boot.py/main.py never returned (or we came in after the boot log): Ctrl-C it
                self.note("boot: no banner yet; interrupting boot.py/main.py with Ctrl-C")
                console.write(b"\x03\x03")
                interrupted = True
                deadline = max(deadline, time.monotonic() + grace)
                what += " (after Ctrl-C)"
                continue
            if index == 1:
                init_seen = time.monotonic()
                continue
            match = console.match
            console.read_until(PROMPT, max(1.0, deadline - time.monotonic()), error=BootTimeout,
                               what=f"rig {self.rig_name}: waiting for the >>> prompt after the banner")
            self.repl.events.enter(State.FRIENDLY)
            return Boot(match.group(0).decode("utf-8", "replace").strip(),
                        match.group(1).decode("utf-8", "replace"))

    def command_mode(self) -> None:
        """The raw REPL, where the device API runs its programs."""
        self.repl.enter_raw()

    def answers(self, timeout: float = 2.0) -> bool:
        """A fresh way into the raw REPL and a round trip, within about ``timeout``."""
        try:
            self.repl.enter_raw(tries=2, timeout=timeout / 2)
            return self.repl.exec(ROUND_TRIP, timeout) == ROUND_TRIP_REPLY
        except (ReplProtocolError, HilError):
            return False

    def still_answers(self) -> bool:
        """The cheap check between tests: a round trip (entering the raw REPL only if needed)."""
        try:
            self.repl.ensure_raw()
            return self.repl.exec(ROUND_TRIP, 2.0) == ROUND_TRIP_REPLY
        except HilError:
            return False

    def request_soft_reset(self) -> None:
        """From the raw REPL: out to the friendly one, then Ctrl-D (the board soft-reboots)."""
        self.repl.ensure_raw()
        self.repl.leave_raw()
        self.console.read_until(PROMPT, 2.0, error=None)
        self.console.drain(0.05, 0.5)
        self.note("soft reset (Ctrl-D)")
        self.console.write(b"\x04")

    def kick(self, answer_s: float) -> bool:
        """From anywhere: interrupt what runs, leave the raw REPL, Ctrl-D. Whether any byte came
        back within ``answer_s`` (a live REPL answers Ctrl-D at once)."""
        self.console.write(b"\x03\x03\x02")
        self.console.drain(0.1, 1.0)
        self.console.write(b"\x04")
        self.repl.forget()
        first = self.console.read(1, answer_s)
        self.console.unread(first)
        return bool(first)

    def await_reboot(self, timeout: float) -> bool:
        """A program was started that may reboot the board: True when the boot banner comes
        (left unread for wait_boot), False when the program ended instead (its output unread)."""
        index = self.console.expect([BANNER_RE, re.escape(b"\x04")], timeout,
                                    what="waiting for the board to reboot or the program to end")
        self.console.unread(self.console.after if index == 0 else b"\x04")
        return index == 0
