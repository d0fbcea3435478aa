"""Parse one run record file (run.jsonl, run-<worker>.jsonl), line by line, with one-line errors.

Schema 1, as hil/report/record.py writes it (docs/rigs-and-fixtures.md). Tolerant where the writer may legitimately differ
(unknown extra keys, optional keys absent, record types a newer writer adds, a killed run without
footer, a last line cut mid-write); strict where a report would otherwise lie (a bad line in the
middle, no header, an unknown schema, a missing nodeid or outcome, a number that is not finite)
or where the file is not a run record at all. Every problem is one line naming the file, the line
number and what is wrong, raised as ConfigError so `hil` exits 2.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.errors import ConfigError
from hil.inputfile import read_regular
from hil.report.model import OUTCOMES, SCHEMA, Header, Measurement, TestResult, parse_time

# A night of a few hundred tests is a few MiB; anything near this is not a run record.
MAX_RECORD_BYTES = 256 * 1024 * 1024


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
    try:
        f = float(value)
    except OverflowError:   # an integer literal too large for a float
        raise line.fail(f"measurement {key!r} is out of range ({str(value)[:20]}...)") from None
    if not math.isfinite(f):
        raise line.fail(f"measurement {key!r} is {_nonfinite(f)}, not a finite number "
                        f"(the writer records an unreadable value as null)")
    return f


def _nonfinite(f: float) -> str:
    return "NaN" if math.isnan(f) else ("Infinity" if f > 0 else "-Infinity")


def _read_lines(file: Path) -> tuple[list[_Line], list[str]]:
    """Parse every JSON line; tolerate (and note) a cut last line only."""
    raw = read_regular(file, MAX_RECORD_BYTES, "run record")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A write cut inside a multi-byte character at the very end is a killed run too.
        if exc.start >= len(raw) - 3 and not raw.endswith(b"\n"):
            text = raw[:exc.start].decode("utf-8")
        else:
            line = raw[:exc.start].count(b"\n") + 1
            if line == 1:
                raise ConfigError(f"{file}:1: not a hil run record: binary data, not UTF-8 text "
                                  f"(byte {exc.start}{_sniff(raw)})") from None
            raise ConfigError(f"{file}:{line}: not UTF-8 text (byte {exc.start})") from None
    notes: list[str] = []
    lines: list[_Line] = []
    chunks = text.split("\n")
    ends_clean = text.endswith("\n")
    filled = [i for i, c in enumerate(chunks) if c.strip()]
    first_index = filled[0] if filled else -1
    last_index = filled[-1] if filled else -1
    for i, chunk in enumerate(chunks):
        if not chunk.strip():
            continue
        lineno = i + 1
        try:
            data = _parse_json(chunk)
        except json.JSONDecodeError as exc:
            if i == last_index and not ends_clean:
                notes.append(f"{file}:{lineno}: last line cut short ({len(chunk)} bytes, the run "
                             f"was killed mid-write); ignored")
                continue
            if i == first_index:
                raise ConfigError(f"{file}:{lineno}: {_foreign(text, chunk)}") from None
            cut = exc.msg.startswith("Unterminated string") or exc.pos >= len(chunk.rstrip()) - 1
            what = ("truncated JSON line (cut mid-record, not at the end of the file)" if cut
                    else f"invalid JSON ({exc.msg} at column {exc.colno})")
            raise ConfigError(f"{file}:{lineno}: {what}") from None
        except _Unreadable as exc:
            raise ConfigError(f"{file}:{lineno}: {exc}") from None
        if not isinstance(data, dict):
            if i == first_index:
                raise ConfigError(f"{file}:{lineno}: not a hil run record: line 1 is "
                                  f"{_short(data)}, not a JSON object")
            raise ConfigError(f"{file}:{lineno}: a record must be a JSON object, got {_short(data)}")
        lines.append(_Line(file, lineno, data))
    return lines, notes


class _Unreadable(ValueError):
    pass


def _parse_json(chunk: str) -> Any:
    try:
        return json.loads(chunk)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise _Unreadable("JSON nested too deeply to read") from None
    except ValueError as exc:   # e.g. an integer of more digits than Python converts
        why = " ".join(str(exc).split(";")[0].split())[:100]
        raise _Unreadable(f"unreadable JSON value ({why})") from None


def _sniff(raw: bytes) -> str:
    kinds = {b"\x89PNG": "a PNG image", b"PK\x03\x04": "a zip archive", b"\x1f\x8b": "gzip data",
             b"\x7fELF": "an ELF binary", b"%PDF": "a PDF"}
    for magic, name in kinds.items():
        if raw.startswith(magic):
            return f"; looks like {name}"
    return ""


def _foreign(text: str, first: str) -> str:
    """Why a file whose first line is not JSON is not a run record, as one clause."""
    try:
        whole = _parse_json(text)
    except (ValueError, RecursionError):
        whole = None
    if isinstance(whole, (dict, list)):
        keys = (f" with keys {', '.join(list(whole)[:4])}" if isinstance(whole, dict) and whole
                else "")
        return (f"not a hil run record: one multi-line JSON document{keys} (a run record is "
                f"JSON Lines: one object per line, a header first)")
    head = " ".join(first.split())
    head = head if len(head) <= 30 else head[:27] + "..."
    return f"not a hil run record: line 1 is not JSON (starts {head!r})"


def _header(line: _Line) -> Header:
    d = line.data
    if "type" not in d and "schema" not in d:
        keys = ", ".join(list(d)[:4]) + (", ..." if len(d) > 4 else "")
        raise line.fail(f"not a hil run record: the first record has no 'type' "
                        f"(keys: {keys or 'none'})")
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
        firmware_family=line.get("firmware_family", str, "", nullable=True, rtype="header") or "",
        firmware_banner=line.get("firmware_banner", str, "", nullable=True, rtype="header") or "",
        firmware_image=line.get("firmware_image", str, "", nullable=True, rtype="header") or "",
        firmware_image_sha256=line.get("firmware_image_sha256", str, "", nullable=True,
                                       rtype="header") or "",
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
    if not math.isfinite(float(duration)):
        raise line.fail(f"test 'duration' is {_nonfinite(float(duration))}, not a finite number")
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
    unknown: Counter[str] = Counter()
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
        elif not isinstance(kind, str) or not kind:
            raise line.fail(f"record 'type' must be a name, got {_short(kind)}")
        else:
            # A newer writer's record (steps, notes...): nothing a report of schema 1 needs.
            unknown[kind] += 1
    for kind, n in sorted(unknown.items()):
        notes.append(f"{file}: {n} record{'s' if n > 1 else ''} of type {kind!r} unknown to this "
                     f"hil (it reads header, test, footer); ignored")
    if footer is None:
        notes.append(f"{file}: no footer, the run was killed or is still running")
    return _FileRecord(header, tests, footer, notes)
