"""Run record writer, schema 1 (its lines: docs/rigs-and-fixtures.md, "The run record").

One JSON object per line; each line is flushed and fsynced before the writer returns, so a run
killed at any moment keeps every test already recorded (at worst the last line is cut short,
which readers skip). The plugin writes; hil/report/runs.py is the reader.
"""
from __future__ import annotations

import getpass
import hashlib
import json
import math
import os
import re
import socket
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from hil import __version__

SCHEMA = 1
OUTCOMES = ("passed", "failed", "broken", "skipped", "xfailed", "xpassed")
MAX_LOG_NAME = 150
FIRMWARE_KEYS = ("family", "banner", "image", "image_sha256")


def now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="milliseconds")


def new_run_id(rig: str, results: Path | None = None) -> str:
    """``YYYYmmdd-HHMMSS-<rig>``, with a -2, -3... suffix if that directory already exists."""
    base = f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{re.sub(r'[^A-Za-z0-9_.-]', '_', rig)}"
    if results is None:
        return base
    run_id, n = base, 1
    while (Path(results) / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def sanitize_nodeid(nodeid: str) -> str:
    """A file name for a test's serial log: readable, unique, no directories."""
    name = nodeid.replace("::", "__").replace("/", "_")
    name = re.sub(r"[^A-Za-z0-9_.,=+-]", "_", name).strip("._") or "test"
    if len(name) > MAX_LOG_NAME:
        digest = hashlib.sha1(nodeid.encode()).hexdigest()[:10]
        name = f"{name[:MAX_LOG_NAME - 11]}-{digest}"
    return name


def one_line(text: str, limit: int = 500) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


@dataclass(frozen=True)
class MeasurementRecord:
    name: str
    value: float | None
    unit: str = ""
    low: float | None = None
    high: float | None = None
    ok: bool | None = None

    @classmethod
    def check(cls, name: str, value: float, unit: str = "", low: float | None = None,
              high: float | None = None) -> "MeasurementRecord":
        """A measurement with ``ok`` judged against its band (None when it has no limits)."""
        v = float(value)
        if not math.isfinite(v):
            return cls(name, None, unit, low, high, False)
        ok = None
        if low is not None or high is not None:
            ok = (low is None or v >= low) and (high is None or v <= high)
        return cls(name, v, unit, None if low is None else float(low),
                   None if high is None else float(high), ok)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RunRecordWriter:
    """Appends header, test and footer lines to ``<run_dir>/run.jsonl`` (or run-<worker>.jsonl)."""

    def __init__(self, run_dir: Path, worker: str | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.worker = worker
        self.path = self.run_dir / ("run.jsonl" if worker is None else f"run-{worker}.jsonl")
        self._file = open(self.path, "a", encoding="utf-8")
        self.counts: dict[str, int] = {}
        self.closed = False

    def _write(self, record: dict[str, Any]) -> dict[str, Any]:
        line = json.dumps(record, ensure_ascii=False, allow_nan=False, default=str)
        self._file.write(line + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        return record

    def header(self, *, run_id: str, rig: str, board: str, firmware_profile: str,
               firmware_version: str = "", port: str = "", argv: Iterable[str] = (),
               started: str | None = None, firmware: Mapping[str, str] | None = None
               ) -> dict[str, Any]:
        """``firmware``: what else is known of the build, for the report's "what changed in the
        firmware" line: any of ``family`` (the profile's family), ``banner`` (the MicroPython
        banner line the board printed), ``image`` (the image file flashed) and ``image_sha256``.
        Written as ``firmware_<key>``; empty values are left out."""
        extra = {}
        for key, value in (firmware or {}).items():
            if key not in FIRMWARE_KEYS:
                raise ValueError(f"firmware key {key!r} is not one of {FIRMWARE_KEYS}")
            if value:
                extra[f"firmware_{key}"] = str(value)
        return self._write({
            "type": "header", "schema": SCHEMA, "run_id": run_id, "started": started or now_iso(),
            "host": socket.gethostname(), "user": _user(), "hil_version": __version__,
            "rig": rig, "board": board, "firmware_profile": firmware_profile,
            "firmware_version": firmware_version, **extra, "port": port, "argv": list(argv),
            "worker": self.worker,
        })

    def test(self, *, nodeid: str, rig: str, firmware_profile: str, outcome: str, duration: float,
             started: str, message: str = "", longrepr: str = "",
             measurements: Iterable[MeasurementRecord | dict] = (), serial_log: str | None = None,
             markers: Iterable[str] = (), steps: Iterable[dict] = (),
             properties: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
        """``properties``: what the test recorded with pytest's ``record_property`` (or
        ``user_properties``), e.g. ``known_weakness``; written only when there are some."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome {outcome!r} is not one of {OUTCOMES}")
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        return self._write({
            "type": "test", "nodeid": nodeid, "rig": rig, "firmware_profile": firmware_profile,
            "outcome": outcome, "duration": round(float(duration), 6), "started": started,
            "message": "" if outcome == "passed" else one_line(message),
            "longrepr": longrepr,
            "measurements": [m.to_dict() if isinstance(m, MeasurementRecord) else dict(m)
                             for m in measurements],
            "serial_log": serial_log, "markers": sorted(set(markers)), "steps": list(steps),
            **({"properties": [list(p) for p in properties]} if properties else {}),
        })

    def footer(self, exitstatus: int, steps: Iterable[dict] = ()) -> dict[str, Any]:
        """``steps``: what was done to the board outside any test (session start-up)."""
        record = self._write({"type": "footer", "finished": now_iso(), "exitstatus": int(exitstatus),
                              "counts": dict(sorted(self.counts.items())), "steps": list(steps)})
        self.close()
        return record

    def close(self) -> None:
        if not self.closed:
            self._file.close()
            self.closed = True


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return os.environ.get("USER", "")
