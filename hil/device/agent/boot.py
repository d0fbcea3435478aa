"""How a board running the k210-hil agent boots and answers, for the lifecycle
(hil.board.lifecycle.BootConsole).

The agent prints ``<- BOOT agent=... build=...`` when the firmware starts and answers HELLO once
it runs. A reboot the framework asked for (REBOOT, the agent's soft reset) is over when its BOOT
line has come: until then a HELLO could still reach the old firmware. After the link was
reopened (a power cycle or reset of an emulator whose console closes with it) the BOOT line may
have gone to nobody, so HELLO answering is the boot. A BOOT line nobody expected (the firmware
crashed and restarted, a watchdog) is a reboot the lifecycle is told of: ``rebooted(UNEXPECTED)``.

Only the lifecycle calls these; the agent's command mode is its only mode (state RAW).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from hil.agent.client import AgentClient
from hil.agent.errors import AgentLinkError, AgentRebooted
from hil.agent.protocol import Answer
from hil.agent.records import Hello
from hil.board.state import SOFT_RESET, UNEXPECTED, BoardEvents, RebootCause, State
from hil.console import Console
from hil.errors import BootTimeout, HilError

ROUND_TRIP_S = 2.0


@dataclass(frozen=True)
class AgentBootInfo:
    banner: str          # what the agent says of itself: version, board, build id
    version: str         # the agent version HELLO reports (a profile's ``version``)


class AgentBoot:
    def __init__(self, client: AgentClient, console: Console, events: BoardEvents, rig_name: str) -> None:
        self.client = client
        self.console = console
        self.events = events
        self.rig_name = rig_name
        self.silent = False
        self.hello: Hello | None = None
        self._asked = False           # a REBOOT went out: its BOOT line ends the reboot
        self._mark = client.boots     # BOOT lines seen when it went out
        self._fresh_link = False      # the link was reopened since: a BOOT line may be lost
        client.on_boot = self._saw_boot
        events.subscribe(self)

    def note(self, text: str) -> None:
        self.console.link.note(text)

    # -- board events ------------------------------------------------------------------------------
    def rebooted(self, cause: RebootCause) -> None:
        self.hello = None
        if cause is not SOFT_RESET:       # a reset or power cycle, not our REBOOT: HELLO tells its end
            self._asked = False

    def reconnected(self) -> None:
        self.client.forget_input()
        self._fresh_link = True

    def _saw_boot(self, ans: Answer) -> None:
        """A BOOT line: a reboot the lifecycle does not know of yet, unless one is under way."""
        if self._asked or self.events.state in (State.BOOTING, State.OFF, State.UNKNOWN):
            return                    # under way, or nobody holds anything yet
        self.note(f"agent: the firmware restarted unasked ({ans.status})")
        self.events.rebooted(UNEXPECTED)

    # -- what the lifecycle asks ----------------------------------------------------------------------
    def wait_boot(self, timeout: float, interrupt: bool = True) -> AgentBootInfo:
        """The BOOT line of a reboot we asked for (unless the link was reopened since), then HELLO."""
        deadline = time.monotonic() + timeout
        what = f"rig {self.rig_name}: waiting for the agent's BOOT line"
        try:
            if self._asked and not self._fresh_link:
                if self.client.await_boot(self._mark, timeout) is None:
                    raise self.console.error(BootTimeout, what + " after REBOOT", timeout)
            self.hello = self.client.wait_ready(max(0.1, deadline - time.monotonic()))
        except AgentLinkError as exc:
            raise self.console.error(BootTimeout, f"rig {self.rig_name}: the agent did not answer HELLO "
                                                  f"after its boot ({exc})", timeout) from None
        finally:
            self._asked = False
        self._fresh_link = False
        self.events.enter(State.RAW)
        h = self.hello
        return AgentBootInfo(f"k210-hil agent {h.agent} (protocol {h.proto}) on {h.board}, build {h.build}",
                             h.agent)

    def command_mode(self) -> None:
        """The agent has one mode: whatever the firmware printed meanwhile goes to the log."""
        self.client.drain_events(0.02)
        self.events.enter(State.RAW)

    def answers(self, timeout: float = ROUND_TRIP_S) -> bool:
        """A HELLO round trip within about ``timeout`` (a boot under way gets a second try)."""
        received = self.console.link.bytes_in
        for _ in range(2):
            try:
                self.hello = self.client.hello_within(timeout)
            except AgentRebooted:
                continue
            except HilError:
                break
            self.silent = False
            self.events.enter(State.RAW)
            return True
        self.silent = self.console.link.bytes_in == received
        return False

    def still_answers(self) -> bool:
        return self.answers(ROUND_TRIP_S)

    def _reboot_asked(self) -> None:
        self._asked, self._mark, self._fresh_link = True, self.client.boots, False

    def request_soft_reset(self) -> None:
        """REBOOT: the firmware resets (its answer may be cut off by the reset itself)."""
        self._reboot_asked()
        self.note("soft reset (REBOOT)")
        try:
            ans = self.client.exchange("REBOOT", timeout=ROUND_TRIP_S, tries=1)
        except AgentLinkError:
            return                    # cut off, or no answer: wait_boot sees whether it reboots
        if not ans.ok:
            self._asked = False
            raise self.console.error(BootTimeout, f"rig {self.rig_name}: the firmware refused REBOOT: {ans.status}")

    def kick(self, answer_s: float) -> bool:
        """From anywhere: end a half-sent line, REBOOT. Whether anything came back within ``answer_s``."""
        self._reboot_asked()
        self.client.forget_input()
        self.console.link.write(b"\n")
        self.client.send("REBOOT")
        return self.client.any_bytes(answer_s)

    def await_reboot(self, timeout: float) -> bool:
        """Nothing the agent runs reboots the board by itself."""
        return False
