"""Run-record lines as the raw JSON objects the writer produced, for tests of the format itself
(the framework's reader, hil.report.runs, validates and types them; these tests check the bytes)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every JSON line of a run*.jsonl file, or of all of them in a run directory (sorted by
    name); a last line cut mid-write (a killed run) is skipped."""
    path = Path(path)
    files = sorted(path.glob("run*.jsonl")) if path.is_dir() else [path]
    records: list[dict[str, Any]] = []
    for file in files:
        lines = file.read_text(encoding="utf-8").split("\n")
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    if number != len(lines):
                        raise
    return records
