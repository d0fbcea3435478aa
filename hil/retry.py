"""The one retry policy: a bounded number of tries, each failure noted, no retry against silence.

``Retry(3).run(action, what="put /sd/m.kmodel", retriable=(TransferError,))`` calls
``action(attempt)`` until it returns. A retriable error is noted and tried again (after
``between``, e.g. re-synchronising the REPL), up to ``attempts`` tries; then the last error is
raised as ``exhausted(last)``. ``hopeless(error)`` may say that no retry can help (a board that
answers nothing at all): its exception is raised at once. Anything not retriable propagates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

T = TypeVar("T")
Note = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class Retry:
    attempts: int = 3

    def run(self, action: Callable[[int], T], *, what: str,
            retriable: tuple[type[BaseException], ...],
            exhausted: Callable[[BaseException], BaseException] | None = None,
            between: Callable[[BaseException], None] | None = None,
            hopeless: Callable[[int, BaseException], BaseException | None] | None = None,
            note: Note = _quiet) -> T:
        last: BaseException | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                return action(attempt)
            except retriable as exc:
                last = exc
                note(f"{what}: try {attempt} failed: {exc}")
                if between is not None:
                    between(exc)
                if hopeless is not None:
                    final = hopeless(attempt, exc)
                    if final is not None:
                        raise final from None
        assert last is not None
        raise (exhausted(last) if exhausted is not None else last) from None
