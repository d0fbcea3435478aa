"""What a run record holds, as immutable objects: a run, its headers, its tests, their
measurements (schema 1). Read by parse.py and runs.py; everything in hil/report works on these.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA = 1
OUTCOMES = ("passed", "failed", "broken", "skipped", "xfailed", "xpassed")
# Outcomes that mean "the firmware did what the test expected".
OK_OUTCOMES = frozenset({"passed", "xfailed", "xpassed"})


@dataclass(frozen=True)
class Measurement:
    name: str
    value: float
    unit: str
    low: float | None = None
    high: float | None = None
    ok: bool | None = None


@dataclass(frozen=True)
class Header:
    file: Path
    run_id: str
    rig: str
    firmware_profile: str
    started: datetime | None = None
    host: str = ""
    user: str = ""
    hil_version: str = ""
    board: str = ""
    firmware_version: str = ""
    port: str = ""
    argv: tuple[str, ...] = ()
    worker: str | None = None
    # Optional: what the plugin knows of the build beyond its profile (absent in older records).
    firmware_family: str = ""
    firmware_banner: str = ""
    firmware_image: str = ""
    firmware_image_sha256: str = ""

    @property
    def family(self) -> str:
        return self.firmware_family or profile_family(self.firmware_profile)


def profile_family(profile: str) -> str:
    """A profile's family when the record does not say: its name up to the first '-' or '_'
    ("maixpy-v0.6.2-full" -> "maixpy"). Profiles of one family share their expectations' shape,
    so their runs are compared test by test."""
    head = re.split(r"[-_]", profile.strip(), maxsplit=1)[0]
    return head.lower()


@dataclass(frozen=True)
class FirmwareInfo:
    """What a run says about the build on one rig."""
    profile: str = ""
    version: str = ""
    banner: str = ""
    image: str = ""
    image_sha256: str = ""


@dataclass(frozen=True)
class TestResult:
    nodeid: str
    rig: str
    firmware_profile: str
    outcome: str
    duration: float = 0.0
    started: datetime | None = None
    message: str = ""
    longrepr: str = ""
    measurements: tuple[Measurement, ...] = ()
    serial_log: str | None = None
    markers: tuple[str, ...] = ()
    firmware_version: str = ""      # from the header of the file the line is in
    board: str = ""
    where: str = ""                 # "file:line", for messages

    @property
    def ok(self) -> bool:
        return self.outcome in OK_OUTCOMES

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"

    @property
    def broken(self) -> bool:
        return self.outcome == "broken"


@dataclass(frozen=True)
class Run:
    path: Path                       # the run directory, or the single .jsonl given
    run_id: str
    started: datetime | None
    headers: tuple[Header, ...]
    tests: tuple[TestResult, ...]
    finished: bool                   # every file has a footer
    exitstatus: int | None           # worst footer exitstatus, None when killed
    notes: tuple[str, ...] = field(default=())
    finished_at: datetime | None = None   # the last footer's time, None when killed

    @property
    def wall_s(self) -> float | None:
        """Suite wall time: first header to last footer (None for a killed run)."""
        if not self.finished or self.started is None or self.finished_at is None:
            return None
        return max(0.0, (self.finished_at - self.started).total_seconds())

    @property
    def rigs(self) -> tuple[str, ...]:
        return tuple(sorted({t.rig for t in self.tests} | {h.rig for h in self.headers}))

    def firmware_of(self, rig: str) -> tuple[str, str]:
        """(profile, version) the run used on ``rig`` ("", "" if unknown)."""
        for h in self.headers:
            if h.rig == rig:
                return h.firmware_profile, h.firmware_version
        for t in self.tests:
            if t.rig == rig:
                return t.firmware_profile, t.firmware_version
        return "", ""

    def header_of(self, rig: str) -> Header | None:
        return next((h for h in self.headers if h.rig == rig), None)

    def board_of(self, rig: str) -> str:
        h = self.header_of(rig)
        if h is not None and h.board:
            return h.board
        return next((t.board for t in self.tests if t.rig == rig and t.board), "")

    def family_of(self, rig: str) -> str:
        h = self.header_of(rig)
        return h.family if h is not None else profile_family(self.firmware_of(rig)[0])

    def firmware_info(self, rig: str) -> FirmwareInfo | None:
        """The build ``rig`` ran, as far as the record says (None when the rig is not in it)."""
        if rig not in self.rigs:
            return None
        h = self.header_of(rig)
        profile, version = self.firmware_of(rig)
        if h is None:
            return FirmwareInfo(profile, version)
        return FirmwareInfo(profile, version, h.firmware_banner, h.firmware_image,
                            h.firmware_image_sha256)

    @property
    def label(self) -> str:
        """Short human name: run id and start time."""
        when = self.started.strftime("%Y-%m-%d %H:%M") if self.started else "time unknown"
        return f"{self.run_id} ({when})"

    def only_rig(self, rig: str) -> "Run":
        """The part of this run that ran on ``rig`` (a run may hold several, one per worker)."""
        if self.rigs == (rig,):
            return self
        return replace(self, tests=tuple(t for t in self.tests if t.rig == rig),
                       headers=tuple(h for h in self.headers if h.rig == rig))

    def sort_key(self) -> tuple[float, str]:
        ts = self.started.timestamp() if self.started else 0.0
        return ts, self.run_id


def parse_time(text: Any) -> datetime | None:
    """An ISO 8601 time (also with a trailing 'Z', which Python 3.10 does not parse), as aware UTC."""
    if not isinstance(text, str) or not text:
        return None
    t = text.strip()
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        return None
    if dt.tzinfo is None:
        # Naive times are taken as local time, as a host clock would write them.
        dt = dt.astimezone()
    return dt.astimezone(timezone.utc)
