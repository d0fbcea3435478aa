"""HilSession: everything --rig sets up in one pytest process. A pytest plugin object.

The session opens the board before the first test (a sim rig starts its simulator, state under
``<results>/sim-state/<rig>``), keeps it up between tests, prepares it for each test that uses
it (a fresh boot for ``power_cycle``, a soft reset after a failed test, else a round trip) and
writes ``<results>/<run_id>/run.jsonl`` as each test finishes (hil.plugin.record), with a serial
log per test under ``logs/`` and the steps done to the board. Infrastructure errors (the board,
link or power at fault) are pytest errors and "broken" in the record, never failures.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hil.errors import HilError, InfrastructureError
from hil.link import redact_url
from hil.plugin.markers import firmware_mismatch, quiet_pyserial
from hil.plugin.progress import TerminalProgress
from hil.plugin.record import SessionRecord
from hil.report.record import now_iso, one_line, sanitize_nodeid


class HilSession:
    def __init__(self, config: pytest.Config, rig: Any, results: Path, run_id: str,
                 worker: str | None = None, notes: list[str] | None = None,
                 argv: list[str] | None = None) -> None:
        self.config = config
        self.rig = rig
        self.results = results
        self.worker = worker          # xdist worker id (gw0...), None in a single-process run
        self.notes = list(notes or [])
        self.run_id = run_id
        self.run_dir = results / self.run_id
        self.record = SessionRecord(config, rig, self.run_dir, run_id, worker,
                                    argv if argv is not None else list(sys.argv))
        self.board: Any = None
        self.board_error: BaseException | None = None
        self.started = False
        self.dirty = False
        self.session_log: Any = None
        self._banner_version = ""
        self._session_steps: list[dict] = []
        self._reports: dict[str, list[pytest.TestReport]] = {}
        self._test_started: dict[str, tuple[str, float]] = {}
        self._test_logs: dict[str, Path] = {}
        self._items: dict[str, pytest.Item] = {}

    # -- capabilities ------------------------------------------------------------------------
    @property
    def has_sd(self) -> bool:
        sd = self.rig.storage.sd
        return sd and (self.rig.sim.sd if self.rig.sim is not None else True)

    def rig_lacks(self, item: pytest.Item) -> str:
        """Why this rig cannot run the test ("" when it can)."""
        if item.get_closest_marker("requires_sd") and not self.has_sd:
            return f"rig {self.rig.name} has no SD card (storage.sd / sim.sd = false)"
        for marker in item.iter_markers("firmware"):
            why = firmware_mismatch(self.rig.profile, marker.args, marker.kwargs, item.nodeid)
            if why:
                return f"rig {self.rig.name} runs {self.rig.profile.name}: {why}"
        return ""

    # -- session start and end ---------------------------------------------------------------
    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        rig = self.rig
        kind = f"simulated ({rig.sim.transport}, pace {rig.sim.pace})" if rig.sim else \
            f"emulated ({rig.emulator.kind})" if rig.emulator else redact_url(rig.serial.port)
        lines = [f"hil: rig {rig.name}: {rig.board.name}, {kind}, firmware profile {rig.profile.name}",
                 f"hil: run record {self.record_path}"]
        return lines + [f"hil: {note}" for note in self.notes]

    @property
    def record_path(self) -> Path:
        return self.record.path

    @property
    def firmware_version(self) -> str:
        """What the board's banner reported, else what the profile says the build is."""
        version = self.board.firmware_version if self.board is not None else self._banner_version
        return version or self.rig.profile.version

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        from hil.board import Board
        from hil.link import SerialLog
        if self.config.option.collectonly:
            return
        started = now_iso()
        board = Board(self.rig, results=self.results)
        try:
            with quiet_pyserial():
                board.open()
        except HilError as exc:
            if self.worker is None:
                # nothing to test on: one line naming the port (or the simulator's problem)
                self._remove_empty_run_dir()
                raise pytest.UsageError(f"rig {self.rig.name}: {exc}") from None
            # an xdist worker: its tests are errors ("broken") naming the rig; the others go on
            self.board_error = InfrastructureError(f"rig {self.rig.name}: {one_line(str(exc))}")
            self.record.open(firmware_version=self.rig.profile.version, port=None, started=started)
            self.started = True
            return
        self.board = board
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log_name = "session.log" if self.worker is None else f"session-{self.worker}.log"
        self.session_log = SerialLog(self.run_dir / "logs" / log_name, f"session {self.run_id}"
                                     + (f" worker {self.worker}" if self.worker else ""))
        board.link.log = self.session_log
        board.note(f"opened {board.port} for rig {self.rig.name}"
                   + (f" (simulator pid {board.sim.pid}, state {board.sim.state_dir})" if board.sim else ""))
        board.steps.open_sink()
        watcher = TerminalProgress.for_config(self.config) if self.worker is None else None
        if watcher is not None:
            board.steps.watch(watcher)    # transfers and memory probes drawn on the terminal
            self.config.pluginmanager.register(watcher, "hil-progress")
        try:
            board.lifecycle.flash_rig_image()
            board.lifecycle.start()
        except InfrastructureError as exc:
            self.board_error = exc
            board.note(f"board not usable: {exc}")
        self._session_steps += board.steps.close_sink()
        self.record.open(firmware_version=self.firmware_version, port=board.port, started=started)
        self.started = True

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if not self.started:            # collect-only, or stopped before the board: no empty run
            self._remove_empty_run_dir()

    def _remove_empty_run_dir(self) -> None:
        """Allure made <run>/allure-results at configure time; leave no empty run behind."""
        for path in (self.run_dir / "allure-results", self.run_dir):
            try:
                path.rmdir()
            except OSError:
                pass

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.record.close(int(exitstatus), self._session_steps)
        if self.started:
            self.record.allure_metadata(self.firmware_version)
        if self.board is not None:
            self._banner_version = self.board.firmware_version
            self.board.close()
            self.board = None
        if self.session_log is not None:
            self.session_log.close()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.record.writer is not None:
            terminalreporter.write_line(f"hil: run record {self.record.writer.path}")

    # -- the board for a test ----------------------------------------------------------------
    def ready_board(self) -> Any:
        if self.board_error is not None:
            raise self.board_error
        if self.board is None:
            raise InfrastructureError(f"rig {self.rig.name}: board not opened (collect-only run?)")
        return self.board

    def prepare(self, item: pytest.Item) -> None:
        lifecycle = self.ready_board().lifecycle
        if item.get_closest_marker("power_cycle"):
            lifecycle.power_cycle()
        elif self.dirty:
            lifecycle.note("previous test failed: soft reset before this one")
            try:
                lifecycle.soft_reset()
            except InfrastructureError as exc:
                lifecycle.recover(f"soft reset after a failed test: {exc}")
        else:
            lifecycle.ensure_ready()
        self.dirty = False

    # -- per-test serial log, steps and record -----------------------------------------------------
    def _board_up(self) -> bool:
        return self.board is not None and self.board.link is not None and self.started

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        from hil.link import SerialLog
        self._reports[nodeid] = []
        self._test_started[nodeid] = (now_iso(), time.monotonic())
        if self._board_up():
            path = self.run_dir / "logs" / f"{sanitize_nodeid(nodeid)}.log"
            self._test_logs[nodeid] = path
            self.board.link.log = SerialLog(path, nodeid)
            self.board.steps.open_sink()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._reports.setdefault(report.nodeid, []).append(report)
        if report.failed and report.when in ("setup", "call", "teardown"):
            self.dirty = True

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: Any):
        yield
        path = self._test_logs.get(item.nodeid)
        if path is not None:
            self.record.attach_log(path)

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        path = self._test_logs.pop(nodeid, None)
        steps: list[dict] = []
        if self._board_up() and path is not None:
            steps = self.board.steps.close_sink()
            self.board.link.log.close()
            self.board.link.log = self.session_log
        reports = self._reports.pop(nodeid, [])
        started, _ = self._test_started.pop(nodeid, (now_iso(), time.monotonic()))
        self.record.test(nodeid, reports, self._items.get(nodeid), started=started, serial_log=path,
                         steps=steps)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._items = {item.nodeid: item for item in session.items}
