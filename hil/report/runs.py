"""Read run records (run.jsonl, run-<worker>.jsonl) into immutable Run objects.

Schema 1, as hil/report/record.py writes it (docs/rigs-and-fixtures.md). The reader is tolerant where the writer may
legitimately differ (unknown extra keys, optional keys absent, a killed run without footer, a last
line cut mid-write) and strict where a report would otherwise lie (a bad line in the middle, no
header, an unknown schema, a missing nodeid or outcome). Every problem is one line naming the file,
the line number and what is wrong, raised as ConfigError so `hil` exits 2.

A run is one directory holding one or more ``run*.jsonl`` (one per xdist worker or rig); they are
merged. A single ``.jsonl`` file can also be given directly.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from hil.errors import ConfigError

SCHEMA = 1
OUTCOMES = ("passed", "failed", "broken", "skipped", "xfailed", "xpassed")
# Outcomes that mean "the firmware did what the test expected".
OK_OUTCOMES = frozenset({"passed", "xfailed", "xpassed"})
RECORD_GLOB = "run*.jsonl"


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


class _Line:
    """One parsed JSON object with its location, for typed access with one-line errors."""

    def __init__(self, file: Path, lineno: int, data: dict[str, Any]):
        self.file, self.lineno, self.data = file, lineno, data

    @property
    def where(self) -> str:
        return f"{self.file}:{self.lineno}"

    def fail(self, problem: str) -> ConfigError:
        return ConfigError(f"{self.where}: {problem}")

    def get(self, key: str, typ: type | tuple[type, ...], default: Any = ..., *,
            nullable: bool = False, rtype: str = "") -> Any:
        if key not in self.data:
            if default is ...:
                raise self.fail(f"{rtype} record has no {key!r}")
            return default
        value = self.data[key]
        if value is None and nullable:
            return None
        if not isinstance(value, typ) or (isinstance(value, bool) and bool not in _as_tuple(typ)):
            want = "/".join(t.__name__ for t in _as_tuple(typ))
            raise self.fail(f"{rtype} {key!r} must be {want}, got {_short(value)}")
        return value


def _as_tuple(typ: type | tuple[type, ...]) -> tuple[type, ...]:
    return typ if isinstance(typ, tuple) else (typ,)


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _number(line: _Line, key: str, value: Any, nullable: bool) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise line.fail(f"measurement {key!r} must be a number, got {_short(value)}")
    f = float(value)
    if math.isnan(f):
        raise line.fail(f"measurement {key!r} is NaN")
    return f


def _read_lines(file: Path) -> tuple[list[_Line], list[str]]:
    """Parse every JSON line; tolerate (and note) a cut last line only."""
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such run record") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A write cut inside a multi-byte character at the very end is a killed run too.
        if exc.start >= len(raw) - 3 and not raw.endswith(b"\n"):
            text = raw[:exc.start].decode("utf-8")
        else:
            line = raw[:exc.start].count(b"\n") + 1
            raise ConfigError(f"{file}:{line}: not UTF-8 text (byte {exc.start})") from None
    notes: list[str] = []
    lines: list[_Line] = []
    chunks = text.split("\n")
    ends_clean = text.endswith("\n")
    last_index = max((i for i, c in enumerate(chunks) if c.strip()), default=-1)
    for i, chunk in enumerate(chunks):
        if not chunk.strip():
            continue
        lineno = i + 1
        try:
            data = json.loads(chunk)
        except json.JSONDecodeError as exc:
            if i == last_index and not ends_clean:
                notes.append(f"{file}:{lineno}: last line cut short ({len(chunk)} bytes, the run "
                             f"was killed mid-write); ignored")
                continue
            cut = exc.msg.startswith("Unterminated string") or exc.pos >= len(chunk.rstrip()) - 1
            what = ("truncated JSON line (cut mid-record, not at the end of the file)" if cut
                    else f"invalid JSON ({exc.msg} at column {exc.colno})")
            raise ConfigError(f"{file}:{lineno}: {what}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{file}:{lineno}: a record must be a JSON object, got {_short(data)}")
        lines.append(_Line(file, lineno, data))
    return lines, notes


def _header(line: _Line) -> Header:
    d = line.data
    if d.get("type") != "header":
        raise line.fail(f"first record must be the header, got type {_short(d.get('type'))}"
                        if "type" in d else "first record must be the header (no 'type')")
    schema = line.get("schema", int, rtype="header")
    if schema != SCHEMA:
        raise line.fail(f"unknown schema {schema} (this hil reads schema {SCHEMA})")
    started_text = line.get("started", str, "", rtype="header")
    started = parse_time(started_text)
    if started_text and started is None:
        raise line.fail(f"header 'started' is not an ISO 8601 time: {_short(started_text)}")
    argv = line.get("argv", list, [], rtype="header")
    return Header(
        file=line.file,
        run_id=line.get("run_id", str, rtype="header"),
        rig=line.get("rig", str, rtype="header"),
        firmware_profile=line.get("firmware_profile", str, rtype="header"),
        started=started,
        host=line.get("host", str, "", rtype="header"),
        user=line.get("user", str, "", rtype="header"),
        hil_version=line.get("hil_version", str, "", rtype="header"),
        board=line.get("board", str, "", rtype="header"),
        firmware_version=line.get("firmware_version", str, "", rtype="header"),
        port=line.get("port", str, "", rtype="header"),
        argv=tuple(str(a) for a in argv),
        worker=line.get("worker", str, None, nullable=True, rtype="header"),
    )


def _measurement(line: _Line, index: int, m: Any) -> Measurement | None:
    """One measurement; None for a null value (the writer's encoding of a NaN/inf reading),
    which has nothing to compare or plot."""
    if not isinstance(m, dict):
        raise line.fail(f"measurements[{index}] must be an object, got {_short(m)}")
    name = m.get("name")
    if not isinstance(name, str) or not name:
        raise line.fail(f"measurements[{index}] has no 'name'")
    if "value" not in m:
        raise line.fail(f"measurement {name!r} has no 'value'")
    unit = m.get("unit", "")
    if not isinstance(unit, str):
        raise line.fail(f"measurement {name!r}: 'unit' must be str, got {_short(unit)}")
    ok = m.get("ok")
    if ok is not None and not isinstance(ok, bool):
        raise line.fail(f"measurement {name!r}: 'ok' must be true/false/null, got {_short(ok)}")
    value = _number(line, f"{name}.value", m["value"], nullable=True)
    if value is None:
        return None
    return Measurement(name=name, value=value, unit=unit,
                       low=_number(line, f"{name}.low", m.get("low"), nullable=True),
                       high=_number(line, f"{name}.high", m.get("high"), nullable=True),
                       ok=ok)


def _test(line: _Line, header: Header) -> TestResult:
    r = "test"
    outcome = line.get("outcome", str, rtype=r)
    if outcome not in OUTCOMES:
        raise line.fail(f"test outcome {outcome!r} unknown (known: {', '.join(OUTCOMES)})")
    duration = line.get("duration", (int, float), 0.0, rtype=r)
    ms = line.get("measurements", list, [], rtype=r)
    markers = line.get("markers", list, [], rtype=r)
    rig = line.get("rig", str, header.rig, rtype=r)
    return TestResult(
        nodeid=line.get("nodeid", str, rtype=r),
        rig=rig,
        firmware_profile=line.get("firmware_profile", str, header.firmware_profile, rtype=r),
        outcome=outcome,
        duration=float(duration),
        started=parse_time(line.get("started", str, "", rtype=r)),
        message=line.get("message", str, "", rtype=r),
        longrepr=line.get("longrepr", str, "", nullable=True, rtype=r) or "",
        measurements=tuple(x for x in (_measurement(line, i, m) for i, m in enumerate(ms))
                           if x is not None),
        serial_log=line.get("serial_log", str, None, nullable=True, rtype=r),
        markers=tuple(str(m) for m in markers),
        firmware_version=header.firmware_version if rig == header.rig else "",
        board=header.board if rig == header.rig else "",
        where=line.where,
    )


@dataclass
class _FileRecord:
    header: Header
    tests: list[TestResult]
    footer: dict[str, Any] | None
    notes: list[str]


def read_record_file(file: Path) -> _FileRecord:
    """Parse one run*.jsonl file."""
    lines, notes = _read_lines(file)
    if not lines:
        raise ConfigError(f"{file}: empty run record (no header)"
                          if not notes else f"{file}: missing header (only a cut line)")
    header = _header(lines[0])
    tests: list[TestResult] = []
    footer: dict[str, Any] | None = None
    for line in lines[1:]:
        kind = line.data.get("type")
        if footer is not None:
            raise line.fail(f"record after the footer (type {_short(kind)})")
        if kind == "test":
            tests.append(_test(line, header))
        elif kind == "footer":
            status = line.get("exitstatus", int, None, nullable=True, rtype="footer")
            counts = line.get("counts", dict, {}, rtype="footer")
            footer = {"finished": line.get("finished", str, "", rtype="footer"),
                      "exitstatus": status, "counts": counts}
        elif kind == "header":
            raise line.fail("second header in one file")
        elif kind is None:
            raise line.fail("record has no 'type'")
        else:
            raise line.fail(f"unknown record type {_short(kind)} (known: header, test, footer)")
    if footer is None:
        notes.append(f"{file}: no footer, the run was killed or is still running")
    return _FileRecord(header, tests, footer, notes)


def _has_records(d: Path) -> bool:
    return any(p.is_file() for p in d.glob(RECORD_GLOB))


def run_dirs_under(d: Path) -> list[Path]:
    """Sub-directories of ``d`` that are runs: holding run*.jsonl themselves, or one level down
    (``--hil-results X`` makes the plugin write X/<run_id>/run.jsonl, and `hil nightly` passes a
    dated X per rig)."""
    out: list[Path] = []
    for child in sorted(p for p in d.iterdir() if p.is_dir()):
        if _has_records(child):
            out.append(child)
        else:
            out.extend(g for g in sorted(child.iterdir()) if g.is_dir() and _has_records(g))
    return out


def locate_run(path: str | Path) -> Path:
    """The run a path names: a .jsonl file, a directory holding run*.jsonl, or a directory
    holding exactly one such run directory (what ``--hil-results DIR`` produces)."""
    p = Path(path)
    if p.is_file():
        return p
    if not p.is_dir():
        raise ConfigError(f"{p}: no such run directory or run record")
    if _has_records(p):
        return p
    subs = [c for c in sorted(p.iterdir()) if c.is_dir() and _has_records(c)]
    if len(subs) == 1:
        return subs[0]
    if subs:
        names = ", ".join(c.name for c in subs[:4]) + (", ..." if len(subs) > 4 else "")
        raise ConfigError(f"{p}: holds {len(subs)} runs ({names}); name one of them")
    raise ConfigError(f"{p}: no run record here (expected {RECORD_GLOB})")


def record_files(path: Path) -> list[Path]:
    """The record files of a run: ``path`` itself, or every run*.jsonl in its run directory."""
    where = locate_run(path)
    if where.is_file():
        return [where]
    return sorted(p for p in where.glob(RECORD_GLOB) if p.is_file())


def load_run(path: str | Path) -> Run:
    """Load one run (a run directory or one .jsonl file), merging every record file in it.

    The same test on the same rig appearing twice (a worker restarted, a resumed run) keeps the
    later result and notes it.
    """
    p = locate_run(path)
    records = [read_record_file(f) for f in record_files(p)]
    notes: list[str] = [n for r in records for n in r.notes]
    ids = sorted({r.header.run_id for r in records})
    if len(ids) > 1:
        notes.append(f"{p}: record files carry different run ids ({', '.join(ids)}); merged")
    by_key: dict[tuple[str, str], TestResult] = {}
    for rec in records:
        for t in rec.tests:
            key = (t.rig, t.nodeid)
            if key in by_key:
                notes.append(f"{t.where}: {t.nodeid} on {t.rig} recorded twice; the later result kept")
                prev = by_key[key]
                if _later(prev, t) is prev:
                    continue
            by_key[key] = t
    starts = [r.header.started for r in records if r.header.started is not None]
    finished = all(r.footer is not None for r in records)
    statuses = [r.footer["exitstatus"] for r in records
                if r.footer is not None and r.footer["exitstatus"] is not None]
    return Run(path=p, run_id=ids[0] if len(ids) == 1 else records[0].header.run_id,
               started=min(starts) if starts else None,
               headers=tuple(r.header for r in records),
               tests=tuple(by_key.values()),
               finished=finished,
               exitstatus=max(statuses) if finished and statuses else None,
               notes=tuple(notes))


def _later(a: TestResult, b: TestResult) -> TestResult:
    if a.started and b.started:
        return b if b.started >= a.started else a
    return b


def find_runs(directory: str | Path) -> tuple[list[Run], list[str]]:
    """Every run under ``directory`` (see run_dirs_under, and loose .jsonl files),
    oldest first. A run that cannot be read is skipped and its one-line reason returned, so one
    broken night does not hide the rest of the history.
    """
    d = Path(directory)
    if not d.is_dir():
        raise ConfigError(f"{d}: no such results directory")
    candidates: list[Path] = run_dirs_under(d)
    candidates += sorted(c for c in d.iterdir() if c.is_file() and c.suffix == ".jsonl")
    runs: list[Run] = []
    skipped: list[str] = []
    for c in candidates:
        try:
            runs.append(load_run(c))
        except ConfigError as exc:
            skipped.append(f"skipped {c.relative_to(d)}: {exc}")
    runs.sort(key=Run.sort_key)
    return runs, skipped


def same_run(a: Run, b: Run) -> bool:
    try:
        return a.path.resolve() == b.path.resolve()
    except OSError:
        return a.path == b.path


def unique_runs(runs: Iterable[Run]) -> list[Run]:
    """Runs without duplicates (same path), oldest first."""
    out: list[Run] = []
    for r in runs:
        if not any(same_run(r, o) for o in out):
            out.append(r)
    out.sort(key=Run.sort_key)
    return out
