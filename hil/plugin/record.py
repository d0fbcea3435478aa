"""The run record of one pytest session: a header when the board is up, a line per finished test
(outcome, measurements, serial log, steps), a footer; and the allure extras beside it.

The format is hil.report.record's (schema 1); this part decides what goes in it.
"""
from __future__ import annotations

import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hil.link import redact_url
from hil.plugin.keys import MEASURE_KEY
from hil.plugin.outcomes import classify
from hil.report.record import RunRecordWriter

_IGNORED_MARKERS = {"parametrize", "usefixtures", "filterwarnings", "skipif", "skip", "xfail"}


@dataclass
class SessionRecord:
    config: pytest.Config
    rig: Any
    run_dir: Path
    run_id: str
    worker: str | None
    argv: list[str]
    writer: RunRecordWriter | None = None

    @property
    def path(self) -> Path:
        return self.run_dir / ("run.jsonl" if self.worker is None else f"run-{self.worker}.jsonl")

    def open(self, *, firmware_version: str, port: str | None, started: str) -> None:
        self.writer = RunRecordWriter(self.run_dir, worker=self.worker)
        self.writer.header(run_id=self.run_id, rig=self.rig.name, board=self.rig.board.name,
                           firmware_profile=self.rig.profile.name, firmware_version=firmware_version,
                           port=port if port is not None else redact_url(self.rig.serial.port),
                           argv=self.argv, started=started)

    def test(self, nodeid: str, reports: list[pytest.TestReport], item: pytest.Item | None, *,
             started: str, serial_log: Path | None, steps: list[dict]) -> None:
        if self.writer is None or not reports:
            return
        outcome, message, longrepr = classify(reports, item)
        self.writer.test(
            nodeid=nodeid, rig=self.rig.name, firmware_profile=self.rig.profile.name, outcome=outcome,
            duration=sum(r.duration for r in reports), started=started, message=message,
            longrepr=longrepr, measurements=item.stash.get(MEASURE_KEY, []) if item else [],
            serial_log=str(serial_log.relative_to(self.run_dir)) if serial_log is not None else None,
            markers=[m.name for m in item.iter_markers() if m.name not in _IGNORED_MARKERS] if item else [],
            steps=steps, properties=[(str(k), str(v)) for k, v in item.user_properties] if item else [])

    def close(self, exitstatus: int, steps: list[dict]) -> None:
        if self.writer is not None and not self.writer.closed:
            self.writer.footer(int(exitstatus), steps)

    # -- allure --------------------------------------------------------------------------------------
    @property
    def allure_dir(self) -> str | None:
        return getattr(self.config.option, "allure_report_dir", None)

    def allure_metadata(self, firmware_version: str) -> None:
        """environment.properties (merged across workers) and categories.json for allure."""
        if not self.allure_dir:
            return
        try:
            import hil
            from hil.report.allure_env import write_allure_metadata
            write_allure_metadata(self.allure_dir, rig=self.rig.name, board=self.rig.board.name,
                                  firmware=self.rig.profile.name, firmware_version=firmware_version,
                                  hil_version=hil.__version__, host=socket.gethostname())
        except Exception as exc:  # noqa: BLE001 - report metadata must never break a run
            print(f"hil: could not write allure metadata to {self.allure_dir}: {exc}", file=sys.stderr)

    def attach_log(self, path: Path) -> None:
        if not self.allure_dir:
            return
        try:
            import allure
            allure.attach.file(str(path), name="serial log", attachment_type=allure.attachment_type.TEXT)
        except Exception as exc:  # noqa: BLE001 - a report attachment must never break a run
            print(f"hil: could not attach {path} to allure: {exc}", file=sys.stderr)
