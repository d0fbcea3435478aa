"""Find and load runs: a run is one directory holding one or more ``run*.jsonl`` (one per
xdist worker or rig), merged into one immutable Run; a single ``.jsonl`` file can also be given.

The objects are in model.py, the line-by-line parsing with its one-line errors in parse.py; both
are re-exported here, the one module the rest of hil/report imports for records.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from hil.errors import ConfigError
from hil.report.model import (OK_OUTCOMES, OUTCOMES, SCHEMA, FirmwareInfo, Header, Measurement,
                              Run, TestResult, parse_time, profile_family)
from hil.report.parse import read_record_file

__all__ = ["OK_OUTCOMES", "OUTCOMES", "SCHEMA", "FirmwareInfo", "Header", "Measurement", "Run",
           "TestResult", "parse_time", "profile_family", "read_record_file", "RECORD_GLOB",
           "run_dirs_under", "locate_run", "record_files", "load_run", "find_runs", "same_run",
           "unique_runs"]

RECORD_GLOB = "run*.jsonl"


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
    ends = [parse_time(r.footer["finished"]) for r in records if r.footer is not None]
    finished_at = max((e for e in ends if e is not None), default=None) if finished else None
    statuses = [r.footer["exitstatus"] for r in records
                if r.footer is not None and r.footer["exitstatus"] is not None]
    return Run(path=p, run_id=ids[0] if len(ids) == 1 else records[0].header.run_id,
               started=min(starts) if starts else None,
               headers=tuple(r.header for r in records),
               tests=tuple(by_key.values()),
               finished=finished,
               exitstatus=max(statuses) if finished and statuses else None,
               notes=tuple(notes), finished_at=finished_at)


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
