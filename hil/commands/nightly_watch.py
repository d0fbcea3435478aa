"""What `hil nightly` says while a rig's pytest runs: where its live serial logs are, and a line
per test module as it finishes (its outcomes, how far the run is, how long it has taken).

Read from outside the pytest process, as the run writes them: the run record (run*.jsonl, a
line per finished test, hil.report.record) and pytest's own output (its "collected N items"
line gives the total). Nothing here blocks: ``poll()`` reads what is new and returns the lines
to print; a half-written record line is left for the next poll.
"""
from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path

COLLECTED = re.compile(rb"collected (\d+) items?(?: / (\d+) deselected)?")
ORDER = ("failed", "broken", "passed", "skipped", "xfailed", "xpassed")


class RunWatch:
    """One rig's run: ``results`` is its --hil-results directory, ``console`` pytest's output."""

    def __init__(self, rig: str, results: Path, console: Path, clock=time.monotonic) -> None:
        self.rig = rig
        self.results = results
        self.console = console
        self.clock = clock
        self.t0 = clock()
        self.total: int | None = None
        self.done = 0
        self.module = ""                       # the module whose tests are finishing now
        self.counts: Counter[str] = Counter()
        self._offsets: dict[Path, int] = {}
        self._partial: dict[Path, bytes] = {}
        self._announced = False

    def poll(self) -> list[str]:
        out: list[str] = []
        if self.total is None:
            self.total = self._collected()
        run_dir = self._run_dir()
        if run_dir is None:
            return out
        if not self._announced:
            self._announced = True
            out.append(f"rig {self.rig}: live serial logs in {run_dir / 'logs'} (session.log, then one "
                       f"file per test as it runs); pytest's output in {self.console}")
        for record in self._new_records(run_dir):
            if record.get("type") != "test":
                continue
            module = str(record.get("nodeid", "")).split("::")[0]
            if self.module and module != self.module:
                out.append(self._module_done(run_dir))
            self.module = module
            self.counts[str(record.get("outcome", "?"))] += 1
            self.done += 1
        return out

    def finish(self) -> list[str]:
        """The lines left once pytest has ended (the last module)."""
        out = self.poll()
        run_dir = self._run_dir()
        if self.module and run_dir is not None:
            out.append(self._module_done(run_dir, running=False))
            self.module = ""
        return out

    # -- reading -------------------------------------------------------------------------------
    def _collected(self) -> int | None:
        try:
            with open(self.console, "rb") as f:
                head = f.read(64 * 1024)
        except OSError:
            return None
        m = COLLECTED.search(head)
        if m is None:
            return None
        return int(m.group(1)) - int(m.group(2) or 0)

    def _run_dir(self) -> Path | None:
        """The plugin adds a <run_id> level under --hil-results."""
        if not self.results.is_dir():
            return None
        for sub in sorted(self.results.iterdir()):
            if sub.is_dir() and (any(sub.glob("run*.jsonl")) or (sub / "logs").is_dir()):
                return sub
        return None

    def _new_records(self, run_dir: Path) -> list[dict]:
        found: list[dict] = []
        for path in sorted(run_dir.glob("run*.jsonl")):
            try:
                with open(path, "rb") as f:
                    f.seek(self._offsets.get(path, 0))
                    chunk = f.read()
            except OSError:
                continue
            self._offsets[path] = self._offsets.get(path, 0) + len(chunk)
            data = self._partial.pop(path, b"") + chunk
            *lines, rest = data.split(b"\n")
            if rest:
                self._partial[path] = rest
            for line in lines:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    found.append(record)
        return found

    # -- saying --------------------------------------------------------------------------------
    def _module_done(self, run_dir: Path, running: bool = True) -> str:
        counts = ", ".join(f"{self.counts[k]} {k}" for k in ORDER if self.counts[k])
        others = sum(v for k, v in self.counts.items() if k not in ORDER)
        counts += f", {others} other" if others else ""
        self.counts.clear()
        took = self.clock() - self.t0
        of = f"/{self.total}" if self.total else ""
        live = _newest_log(run_dir) if running else None
        now = f"; now {live}" if live is not None else ""
        return (f"rig {self.rig}: {Path(self.module).name}: {counts}; {self.done}{of} tests in "
                f"{int(took // 60)}m{int(took % 60):02d}s{now}")


def _newest_log(run_dir: Path) -> Path | None:
    """The serial log being written: the newest per-test log (the test running now)."""
    try:
        logs = [p for p in (run_dir / "logs").glob("*.log") if not p.name.startswith("session")]
        return max(logs, key=lambda p: p.stat().st_mtime) if logs else None
    except OSError:
        return None
