"""The recovery ladder, part of the lifecycle (hil.board.lifecycle.Lifecycle mixes it in):

    [reopen link] -> interrupt (Ctrl-C) -> soft reset (Ctrl-D) -> hard reset (DTR/RTS or power
    reset) -> power cycle

every rung logged in the serial log and as a step, rungs the rig's power driver lacks skipped.
"reopen link" comes first when the port was lost (a USB adapter unplugged and back, an RFC 2217
server restarted) or left closed by a failed flash; a lost port is reopened again before the
reset rungs. What remains wrong after the ladder is a BootTimeout (an InfrastructureError): a
rig problem, reported apart from firmware failures, and the board's state is FAULTED.
"""
from __future__ import annotations

from typing import Callable

from hil.board.state import HARD_RESET, POWER_CYCLE, SOFT_RESET, State
from hil.errors import BootTimeout, InfrastructureError, PowerError

SOFT_ANSWER_S = 1.5      # a live REPL answers Ctrl-D ("soft reboot") at once; silence: go on up the ladder
SOFT_RESET_WAIT_S = 5.0  # a soft reboot prints its banner quickly; longer means it is stuck


class RecoveryLadder:
    """Mixin of Lifecycle: ``recover(reason)`` and its rungs (uses the lifecycle's attributes)."""

    def recover(self, reason: str) -> str:
        """Climb the ladder until the REPL answers; returns the rung that worked."""
        link, power = self.link, self.power
        rungs: list[tuple[str, Callable[[], None]]] = []
        lost = link.lost or not link.is_open
        if lost:
            rungs.append(("reopen link", self._rung_reopen))
        rungs += [("interrupt", lambda: None), ("soft reset", self._rung_soft)]
        # Ctrl-C and Ctrl-A just went unanswered: Ctrl-D will be too. Straight to a reset.
        silent = self.boot.silent and not lost and power.can_reset
        if power.can_reset:
            rungs.append(("hard reset", self._rung_hard))
        if power.can_power:
            rungs.append(("power cycle", self._rung_cycle))
        with self.steps("recover", reason=reason) as step:
            self.note(f"recovery: {reason}; ladder: {', '.join(name for name, _ in rungs)}")
            tried = []
            for number, (name, action) in enumerate(rungs, 1):
                if silent and name in ("interrupt", "soft reset"):
                    self.note(f"recovery rung {number} ({name}): skipped, the board answered nothing at all")
                    continue
                self.note(f"recovery rung {number} ({name})")
                tried.append(name)
                try:
                    with self.steps(f"rung {number}: {name}"):
                        action()
                except (InfrastructureError, PowerError) as exc:
                    self.note(f"recovery rung {number} ({name}) failed: {exc}")
                    continue
                if self.responsive():
                    self.note(f"recovered by rung {number} ({name})")
                    self.recoveries.append(name)
                    step.args["rung"] = name
                    return name
                self.note(f"recovery rung {number} ({name}): REPL still not answering")
            self.events.enter(State.FAULTED)
            raise self.boot.console.error(BootTimeout, f"rig {self.rig.name}: board did not recover ({reason}); "
                                                       f"tried {', '.join(tried)}")

    def _rung_reopen(self) -> None:
        self.note(f"reopening {self.link.url}" + (" (link lost)" if self.link.lost else ""))
        self.reconnect()

    def _reopen_if_lost(self) -> None:
        # a driver that drops the port reopens it after its own action (and an emulator that died
        # has no port to reopen until the reset starts it again)
        if (self.link.lost or not self.link.is_open) and not self.power.drops_port:
            self.reconnect()

    def _rung_soft(self) -> None:
        if not self.boot.kick(SOFT_ANSWER_S):
            raise self.boot.console.error(BootTimeout, f"rig {self.rig.name}: no answer to Ctrl-D (soft reset)",
                                          SOFT_ANSWER_S)
        self.events.rebooted(SOFT_RESET)
        self.wait_boot(min(SOFT_RESET_WAIT_S, self.boot_timeout))

    def _rung_hard(self) -> None:
        self._reopen_if_lost()
        self.power.reset()
        self._reopen_after_power()
        self.events.rebooted(HARD_RESET)
        self.wait_boot()

    def _rung_cycle(self) -> None:
        self._reopen_if_lost()
        if self.power.drops_port:
            self.link.close()
        self.events.enter(State.OFF)
        self.power.cycle()
        self._reopen_after_power()
        self.events.rebooted(POWER_CYCLE)
        self.wait_boot()
