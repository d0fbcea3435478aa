"""The simulated board's event log: what happened on the wires and in the chip, in order.

Every line change, baud change, break, boot, power switch, SD change and reset request is
recorded with a sequence number and a timestamp, so tests (through the control socket) can
check exactly what a client did and when. ``t`` is seconds on the monotonic clock since the log
was created (microsecond resolution); ``seq`` starts at 1 and increases by one per event.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable

Event = dict[str, Any]


class EventLog:
    def __init__(self, capacity: int = 20000) -> None:
        self._t0 = time.monotonic()
        self._events: deque[Event] = deque(maxlen=capacity)  # oldest events fall off
        self._seq = 0
        self._cond = threading.Condition()

    @property
    def t0(self) -> float:
        return self._t0

    def rel(self, t_monotonic: float) -> float:
        """A monotonic timestamp as log time."""
        return round(t_monotonic - self._t0, 6)

    def emit(self, kind: str, t: float | None = None, **fields: Any) -> int:
        """Record one event; ``t`` is a time.monotonic() value (default: now). Returns its seq."""
        stamp = self.rel(time.monotonic() if t is None else t)
        with self._cond:
            self._seq += 1
            event: Event = {"seq": self._seq, "t": stamp, "kind": kind}
            event.update(fields)
            self._events.append(event)
            self._cond.notify_all()
            return self._seq

    @property
    def last_seq(self) -> int:
        with self._cond:
            return self._seq

    def since(self, seq: int = 0) -> list[Event]:
        """Events with a sequence number greater than ``seq`` (0: all still held), oldest first."""
        with self._cond:
            return [dict(e) for e in self._events if e["seq"] > seq]

    def wait_for(self, match: Callable[[Event], bool], since: int = 0,
                 timeout: float = 5.0) -> Event | None:
        """The first event after ``since`` that ``match`` accepts, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self._events:
                    if e["seq"] > since and match(e):
                        return dict(e)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
