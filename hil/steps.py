"""Structured steps (labgrid's @step idea): what the framework did to a board, with timings.

``with steps("power cycle", driver="sim"):`` writes ``step power cycle (driver=sim): start`` and
``... : done in 1.234 s`` (or ``failed in ...: <error>``) to the serial log, and appends a record
to the current sink, which the pytest plugin swaps per test and writes into the run record:

    {"name": "power cycle", "args": {"driver": "sim"}, "depth": 0, "start": 0.512,
     "duration": 1.234, "outcome": "passed"}

``start`` is seconds since the sink was opened (the test's start); ``depth`` nests steps taken
inside another (a recovery rung inside "recover"). A step may add to its args as it learns
(``with steps("file", path=p) as s: ...; s.args["route"] = "uploaded"``).

Steps people wait on are marked ``show=True`` (a transfer, a memory probe): a watcher
(``Steps.watch``; the pytest plugin's draws on the terminal, hil.plugin.progress) hears when
they start, their ``step.progress(done, total)`` and their end, with ``step.summary`` if the step
set one ("2252800 bytes: loads"). Watchers hear nothing of the other steps.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol

MAX_ARG = 120


def _quiet(_: str) -> None:
    pass


def _shown(value: Any) -> str:
    text = f"{value:#x}" if isinstance(value, int) and not isinstance(value, bool) and value > 0xFFFF \
        else str(value)
    return text if len(text) <= MAX_ARG else text[:MAX_ARG - 3] + "..."


class Watcher(Protocol):
    """What a watcher of shown steps hears (hil.plugin.progress draws them)."""

    def started(self, step: "Step") -> None: ...
    def progressed(self, step: "Step", done: int, total: int) -> None: ...
    def finished(self, step: "Step", outcome: str, seconds: float) -> None: ...


@dataclass
class Step:
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    show: bool = False
    summary: str = ""                     # what a watcher prints at the end, if set
    _watchers: tuple[Any, ...] = ()

    def title(self) -> str:
        shown = ", ".join(f"{k}={_shown(v)}" for k, v in self.args.items())
        return f"{self.name} ({shown})" if shown else self.name

    def progress(self, done: int, total: int) -> None:
        """How far a transfer got: told to the watchers of a shown step (no record, no log line)."""
        for watcher in self._watchers:
            watcher.progressed(self, done, total)


class StepSink:
    """Where finished steps go: a list of records, timed from ``t0``."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.records: list[dict[str, Any]] = []


class Steps:
    """The step recorder of one board. ``note`` writes a line to the serial log."""

    def __init__(self, note: Callable[[str], None] = _quiet) -> None:
        self.note = note
        self.sink: StepSink | None = None
        self._depth = 0
        self.watchers: list[Watcher] = []

    def watch(self, watcher: Watcher) -> None:
        self.watchers.append(watcher)

    def open_sink(self) -> StepSink:
        self.sink = StepSink()
        return self.sink

    def close_sink(self) -> list[dict[str, Any]]:
        sink, self.sink = self.sink, None
        return sink.records if sink is not None else []

    @contextlib.contextmanager
    def __call__(self, name: str, *, show: bool = False, **args: Any) -> Iterator[Step]:
        step = Step(name, dict(args), show, _watchers=tuple(self.watchers) if show else ())
        self.note(f"step {step.title()}: start")
        for watcher in step._watchers:
            watcher.started(step)
        t0 = time.monotonic()
        depth, self._depth = self._depth, self._depth + 1
        outcome, error = "passed", ""
        try:
            yield step
        except BaseException as exc:
            outcome, error = "failed", " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            raise
        finally:
            self._depth = depth
            took = time.monotonic() - t0
            self.note(f"step {step.title()}: " + (f"done in {took:.3f} s" if outcome == "passed"
                                                  else f"failed in {took:.3f} s: {error}"))
            for watcher in step._watchers:
                watcher.finished(step, outcome, took)
            sink = self.sink
            if sink is not None:
                record = {"name": name, "args": {k: _jsonable(v) for k, v in step.args.items()},
                          "depth": depth, "start": round(t0 - sink.t0, 6), "duration": round(took, 6),
                          "outcome": outcome}
                if error:
                    record["error"] = error
                sink.records.append(record)


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
