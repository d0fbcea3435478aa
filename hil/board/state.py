"""The board's state, and the one event that tells everyone holding board-side state it is gone.

The lifecycle (hil.board.lifecycle) owns the state: it alone resets, reflashes and waits for a
boot. The REPL records the mode it puts the board in (raw or friendly REPL) and reports a reboot
it sees where a reply should be. Everything that keeps knowledge about the board (the REPL's
raw-paste probe, the transfer's streaming probe and baud, loaded KPU handles, the file cache)
subscribes and drops that knowledge when told:

- ``rebooted(cause)``: the board restarted; ``cause`` says what may have survived;
- ``reconnected()``: the serial link was reopened (a new connection, perhaps another adapter).

A new cause needs no change anywhere else: its defaults say nothing survived.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable, Protocol


class State(Enum):
    UNKNOWN = "unknown"          # just opened, or the REPL lost track
    OFF = "off"
    BOOTING = "booting"          # reset, power or flash done; the boot not yet seen to its prompt
    FRIENDLY = "friendly REPL"   # the >>> prompt
    RAW = "raw REPL"             # MicroPython's raw REPL (the agent's command mode likewise)
    ISP = "ISP"                  # the boot ROM's ISP mode: the flasher has the port
    FAULTED = "faulted"          # the recovery ladder did not bring it back


@dataclass(frozen=True)
class RebootCause:
    """Why the board restarted, and what that leaves intact.

    ``keeps_files``: storage is as it was (nothing written to flash, no write cut short), so
    files verified before are still there. ``same_firmware``: the same build boots again, so
    features probed on it (raw-paste, raw stdin) still hold.
    """
    name: str
    keeps_files: bool = False
    same_firmware: bool = False

    def __str__(self) -> str:
        return self.name


SOFT_RESET = RebootCause("soft reset", keeps_files=True, same_firmware=True)
HARD_RESET = RebootCause("hard reset", keeps_files=True, same_firmware=True)
POWER_CYCLE = RebootCause("power cycle", keeps_files=True, same_firmware=True)
GC_HEAP_SIZE = RebootCause("gc_heap_size", keeps_files=True, same_firmware=True)
UNEXPECTED = RebootCause("unexpected reboot", keeps_files=False, same_firmware=True)   # a write may be cut
FLASH_DATA = RebootCause("ISP write", keeps_files=False, same_firmware=True)
FLASH_FIRMWARE = RebootCause("firmware flashed")


class Subscriber(Protocol):
    def rebooted(self, cause: RebootCause) -> None: ...

    def reconnected(self) -> None: ...


def _quiet(_: str) -> None:
    pass


class BoardEvents:
    """The current state and the subscribers. Publishing is the lifecycle's business (and the
    REPL's, for a reboot it saw); subscribing is anyone's."""

    def __init__(self, note: Callable[[str], None] = _quiet) -> None:
        self.state = State.UNKNOWN
        self.note = note
        self._subscribers: list[Subscriber] = []

    @property
    def subscribers(self) -> tuple[Subscriber, ...]:
        return tuple(self._subscribers)

    def subscribe(self, subscriber: Subscriber) -> Subscriber:
        if subscriber not in self._subscribers:
            self._subscribers.append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def enter(self, state: State) -> None:
        self.state = state

    def rebooted(self, cause: RebootCause) -> None:
        self.state = State.BOOTING
        self.note(f"board rebooted ({cause})")
        for subscriber in self.subscribers:
            subscriber.rebooted(cause)

    def reconnected(self) -> None:
        for subscriber in self.subscribers:
            subscriber.reconnected()
