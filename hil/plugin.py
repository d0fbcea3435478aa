"""pytest plugin: ``pytest --rig NAME`` runs the HIL suites on a rig.

Without --rig the plugin is inert: HIL tests (those under a ``suites`` directory or using the
rig/board/repl/device/firmware/measure fixtures) are skipped with a reason, and everything
else (the framework's own tests) runs untouched.

With --rig the session opens the board before the first test (a sim rig starts its simulator,
state under ``<results>/sim-state/<rig>``), keeps it up between tests, resets it after a test
that failed, and writes ``<results>/<run_id>/run.jsonl`` as each test finishes (fsync per
line), with a serial log per test under ``logs/`` (attached to allure results when allure is
on). Infrastructure errors (the board, link or power at fault) are pytest errors and "broken"
in the record, never failures.

The farm (hil/farm): before anything else the run takes its rigs (``FarmController``): a lock
per rig with an expiry renewed by a heartbeat, or the labgrid place of a labgrid rig, waiting up
to --rig-wait seconds for busy ones, and gives them back at the end (also after a failure,
Ctrl-C or SIGTERM). With pytest-xdist (``-n N``) the controller takes up to N rigs (from several
--rig or a --rig-pool), runs one worker per rig, and each worker writes ``run-<worker>.jsonl``
into the same run directory.
"""
from __future__ import annotations

import contextlib
import fnmatch
import socket
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import pytest

from hil.errors import ConfigError, HilError, InfrastructureError
from hil.link import redact_url
from hil.report.record import MeasurementRecord, RunRecordWriter, now_iso, one_line, sanitize_nodeid

HIL_FIXTURES = ("rig", "board", "repl", "device", "firmware", "measure")
BOARD_FIXTURES = ("board", "repl", "device")
SKIP_NO_RIG = "no --rig given: HIL tests need a rig (e.g. pytest --rig sim)"
FIRMWARE_CAPS = ("accepts", "rejects", "family", "gc_heap_configurable", "v5_loader")
_IGNORED_MARKERS = {"parametrize", "usefixtures", "filterwarnings", "skipif", "skip", "xfail"}

# pyserial 3.5's RFC 2217 client calls Thread.setDaemon/setName (deprecated since Python 3.10)
PYSERIAL_NOISE = r"ignore:set(Daemon|Name)\(\) is deprecated:DeprecationWarning:serial\.rfc2217"
SESSION_KEY = pytest.StashKey["HilSession"]()
CONTROLLER_KEY = pytest.StashKey[Any]()
MEASURE_KEY = pytest.StashKey[list]()
BROKEN_KEY = pytest.StashKey[bool]()


# -- options and markers -------------------------------------------------------------------------
def _seconds(text: str) -> float:
    import argparse
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be >= 0 seconds")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "K210 hardware-in-the-loop")
    group.addoption("--rig", action="append", default=[], metavar="NAME",
                    help="run the HIL suites on this rig (rigs/NAME.toml, or a path to a rig file); "
                         "repeatable: with -n N each xdist worker gets its own rig, without -n the "
                         "first free one is used")
    group.addoption("--rig-pool", default=None, metavar="NAME",
                    help="spread the suites over the free rigs of a pool (rigs/pools/NAME.toml, or a "
                         "path): with -n N up to N of them, one per worker")
    group.addoption("--rig-wait", default=0.0, type=_seconds, metavar="SECONDS",
                    help="wait up to this long for a busy rig (default 0: fail at once naming its holder)")
    group.addoption("--rig-lock-dir", default=None, metavar="DIR",
                    help="rig locks (default $HIL_LOCK_DIR, else $XDG_RUNTIME_DIR/k210-hil/locks, else "
                         "~/.cache/k210-hil/locks); everyone sharing rigs must share this directory")
    group.addoption("--rig-lock-ttl", default=60.0, type=_seconds, metavar="SECONDS",
                    help="a rig lock expires this long after its last renewal (renewed every third of "
                         "it while the run lives; default 60)")
    group.addoption("--rig-dir", default=None, metavar="DIR",
                    help="where rig files live (default ./rigs)")
    group.addoption("--hil-results", default="results", metavar="DIR",
                    help="where run records, serial logs and simulator state go (default ./results)")


def _keep_to_suites(config: pytest.Config) -> None:
    """Never run the framework's own tests on a rig by accident.

    pytest picks its ini file before plugins add their options, taking the value of
    ``--hil-results /elsewhere`` or ``--rig /path/rig.toml`` for a test path. Outside the
    checkout it then finds no pyproject.toml, loses ``testpaths = ["suites"]`` and would collect
    everything below the current directory. With no test path given, fall back to ./suites.
    """
    if config.inipath is not None or config.args_source != pytest.Config.ArgsSource.INVOCATION_DIR:
        return
    suites = Path(config.invocation_params.dir) / "suites"
    if suites.is_dir():
        config.args[:] = [str(suites)]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires_sd: the test needs an SD card on the rig (skipped without one)")
    config.addinivalue_line("markers", "firmware(*names, accepts=, rejects=, family=, gc_heap_configurable=, "
                                       "v5_loader=): run only on matching firmware profiles (name globs and/or "
                                       "capabilities, e.g. firmware(accepts=4))")
    config.addinivalue_line("markers", "power_cycle: power-cycle the board (fresh boot) before the test")
    if hasattr(config, "workerinput"):
        info = config.workerinput.get("hil")
        if info:
            config.addinivalue_line("filterwarnings", PYSERIAL_NOISE)
            _configure_worker(config, info)
        return
    rigs = config.getoption("rig", default=[])
    pool = config.getoption("rig_pool", default=None)
    if not rigs and not pool:
        return   # inert
    if getattr(config.option, "help", False) or getattr(config.option, "version", False):
        return
    if rigs and pool:
        raise pytest.UsageError("--rig and --rig-pool: give one or the other")
    _keep_to_suites(config)
    config.addinivalue_line("filterwarnings", PYSERIAL_NOISE)
    if config.getoption("rig_lock_ttl") <= 0:
        raise pytest.UsageError("--rig-lock-ttl: must be > 0 seconds")
    from hil.farm.controller import FarmController   # imported here so an inert plugin costs nothing
    controller = FarmController(config, rigs, pool)
    config.stash[CONTROLLER_KEY] = controller
    controller.start()
    if controller.distributed:
        return   # the workers open the boards (_configure_worker)
    session = HilSession(config, controller.claims[0].rig, controller.results, controller.run_id,
                         notes=controller.notes)
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "hil-session")


@contextlib.contextmanager
def _quiet_pyserial():
    """Outside tests pytest shows warnings as they come: keep pyserial's noise off a one-line error."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"set(Daemon|Name)\(\) is deprecated", DeprecationWarning,
                                r"serial\.rfc2217")
        yield


def _configure_worker(config: pytest.Config, info: dict) -> None:
    """An xdist worker: the rig its controller took for it (sent in workerinput)."""
    from hil.rig import load_rig
    try:
        rig = load_rig(Path(info["rig_path"]))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    if info.get("port") and info["port"] != rig.serial.port:
        rig = replace(rig, serial=replace(rig.serial, port=info["port"]))
    worker = str(config.workerinput.get("workerid", "gw?"))
    session = HilSession(config, rig, Path(info["results"]), info["run_id"], worker=worker,
                         argv=list(config.workerinput.get("mainargv") or sys.argv))
    config.stash[SESSION_KEY] = session
    if info.get("allure_dir") and getattr(config.option, "allure_report_dir", "missing") is None:
        config.option.allure_report_dir = info["allure_dir"]
    config.pluginmanager.register(session, "hil-session")


def _session(config: pytest.Config) -> "HilSession | None":
    return config.stash.get(SESSION_KEY, None)


def _is_ours(item: pytest.Item, name: str) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.get(name) if info is not None else None
    if not defs:
        return False
    return getattr(defs[-1].func, "__module__", "") == __name__


def is_hil_item(item: pytest.Item) -> bool:
    """A HIL test: lives under suites/ or uses one of this plugin's fixtures."""
    if "suites" in Path(str(getattr(item, "path", ""))).parts:
        return True
    return any(name in getattr(item, "fixturenames", ()) and _is_ours(item, name) for name in HIL_FIXTURES)


def uses_board(item: pytest.Item) -> bool:
    return any(name in getattr(item, "fixturenames", ()) and _is_ours(item, name) for name in BOARD_FIXTURES)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    session = _session(config)
    for item in items:
        if session is None:
            if is_hil_item(item):
                item.add_marker(pytest.mark.skip(reason=SKIP_NO_RIG))
            continue
        reason = session.rig_lacks(item)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


# -- fixtures ------------------------------------------------------------------------------------
def _need_session(request: pytest.FixtureRequest) -> "HilSession":
    session = _session(request.config)
    if session is None:
        pytest.skip(SKIP_NO_RIG)
    return session


@pytest.fixture(scope="session")
def rig(request: pytest.FixtureRequest):
    """The rig spec (hil.rig.RigSpec) of this session."""
    return _need_session(request).rig


@pytest.fixture(scope="session")
def firmware(request: pytest.FixtureRequest):
    """The firmware profile (hil.firmware.FirmwareProfile) the rig is expected to run."""
    return _need_session(request).rig.profile


@pytest.fixture(scope="session")
def board(request: pytest.FixtureRequest):
    """The opened board (hil.board.Board), kept up between tests."""
    return _need_session(request).ready_board()


@pytest.fixture(autouse=True)
def _hil_prepare_board(request: pytest.FixtureRequest):
    """Before each test that uses the board: a fresh boot (power_cycle marker), a soft reset
    after a failed test, or a quick check that the REPL answers."""
    session = _session(request.config)
    if session is not None and uses_board(request.node):
        session.prepare(request.node)
    yield


@pytest.fixture
def repl(board):
    """The board's raw REPL (hil.repl.Repl): exec(code), eval(expr)."""
    return board.repl


@pytest.fixture
def device(board):
    """The device API (hil.device.Device): kpu_load, memory, put/get, files."""
    return board.device


@pytest.fixture
def measure(request: pytest.FixtureRequest) -> Callable[..., float]:
    """``measure(name, value, unit="", low=None, high=None)``: record a measurement in the run
    record; a value outside [low, high] fails the test naming the measurement, value and band."""
    records = request.node.stash.setdefault(MEASURE_KEY, [])

    def _measure(name: str, value: float, unit: str = "", low: float | None = None,
                 high: float | None = None) -> float:
        record = MeasurementRecord.check(name, value, unit, low, high)
        records.append(record)
        if record.ok is False:
            band = f"[{'-inf' if low is None else _num(low)}, {'+inf' if high is None else _num(high)}]"
            shown = f"{_num(value)} {unit}".strip()
            pytest.fail(f"measurement {name} = {shown} is outside its band {band}", pytrace=False)
        return value
    return _measure


def _num(value: float) -> str:
    v = float(value)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:g}"


# -- reports: infrastructure errors are errors, not failures --------------------------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if call.when == "call" and report.failed and call.excinfo is not None \
            and isinstance(call.excinfo.value, InfrastructureError):
        item.stash[BROKEN_KEY] = True
        report.hil_broken = True   # shown as an error by pytest_report_teststatus below


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    if report.when == "call" and report.failed and getattr(report, "hil_broken", False):
        return "error", "E", "ERROR"
    return None


# -- the session ---------------------------------------------------------------------------------
class HilSession:
    """Everything --rig sets up: board, run record, per-test serial logs. A pytest plugin object."""

    def __init__(self, config: pytest.Config, rig: Any, results: Path, run_id: str,
                 worker: str | None = None, notes: list[str] | None = None,
                 argv: list[str] | None = None) -> None:
        self.config = config
        self.argv = argv if argv is not None else list(sys.argv)
        self.rig = rig
        self.results = results
        self.worker = worker          # xdist worker id (gw0...), None in a single-process run
        self.notes = list(notes or [])
        self.run_id = run_id
        self.run_dir = results / self.run_id
        self.board: Any = None
        self.board_error: BaseException | None = None
        self.started = False
        self.dirty = False
        self.writer: RunRecordWriter | None = None
        self.session_log: Any = None
        self._reports: dict[str, list[pytest.TestReport]] = {}
        self._test_started: dict[str, tuple[str, float]] = {}
        self._test_logs: dict[str, Path] = {}

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
        kind = f"simulated ({rig.sim.transport}, pace {rig.sim.pace})" if rig.sim else redact_url(rig.serial.port)
        lines = [f"hil: rig {rig.name}: {rig.board.name}, {kind}, firmware profile {rig.profile.name}",
                 f"hil: run record {self.record_path}"]
        return lines + [f"hil: {note}" for note in self.notes]

    @property
    def record_path(self) -> Path:
        return self.run_dir / ("run.jsonl" if self.worker is None else f"run-{self.worker}.jsonl")

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
            with _quiet_pyserial():
                board.open()
        except HilError as exc:
            if self.worker is None:
                # nothing to test on: one line naming the port (or the simulator's problem)
                self._remove_empty_run_dir()
                raise pytest.UsageError(f"rig {self.rig.name}: {exc}") from None
            # an xdist worker: its tests are errors ("broken") naming the rig; the others go on
            self.board_error = InfrastructureError(f"rig {self.rig.name}: {one_line(str(exc))}")
            self.writer = RunRecordWriter(self.run_dir, worker=self.worker)
            self.writer.header(run_id=self.run_id, rig=self.rig.name, board=self.rig.board.name,
                               firmware_profile=self.rig.profile.name,
                               firmware_version=self.rig.profile.version, port=redact_url(self.rig.serial.port),
                               argv=self.argv, started=started)
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
        self.writer = RunRecordWriter(self.run_dir, worker=self.worker)
        try:
            board.flash_rig_image()
            board.start()
        except InfrastructureError as exc:
            self.board_error = exc
            board.note(f"board not usable: {exc}")
        self.writer.header(run_id=self.run_id, rig=self.rig.name, board=self.rig.board.name,
                           firmware_profile=self.rig.profile.name,
                           firmware_version=self.firmware_version, port=board.port, argv=self.argv,
                           started=started)
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
        if self.writer is not None and not self.writer.closed:
            self.writer.footer(int(exitstatus))
        if self.started:
            self._write_allure_metadata()
        if self.board is not None:
            self._banner_version = self.board.firmware_version
            self.board.close()
            self.board = None
        if self.session_log is not None:
            self.session_log.close()

    _banner_version = ""

    def _write_allure_metadata(self) -> None:
        """environment.properties (merged across workers) and categories.json for allure."""
        allure_dir = getattr(self.config.option, "allure_report_dir", None)
        if not allure_dir:
            return
        try:
            import hil
            from hil.report.allure_env import write_allure_metadata
            write_allure_metadata(allure_dir, rig=self.rig.name, board=self.rig.board.name,
                                  firmware=self.rig.profile.name, firmware_version=self.firmware_version,
                                  hil_version=hil.__version__, host=socket.gethostname())
        except Exception as exc:  # noqa: BLE001 - report metadata must never break a run
            print(f"hil: could not write allure metadata to {allure_dir}: {exc}", file=sys.stderr)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.writer is not None:
            terminalreporter.write_line(f"hil: run record {self.writer.path}")

    # -- the board for a test ----------------------------------------------------------------
    def ready_board(self) -> Any:
        if self.board_error is not None:
            raise self.board_error
        if self.board is None:
            raise InfrastructureError(f"rig {self.rig.name}: board not opened (collect-only run?)")
        return self.board

    def prepare(self, item: pytest.Item) -> None:
        board = self.ready_board()
        if item.get_closest_marker("power_cycle"):
            board.power_cycle()
        elif self.dirty:
            board.note("previous test failed: soft reset before this one")
            try:
                board.soft_reset()
            except InfrastructureError as exc:
                board.recover(f"soft reset after a failed test: {exc}")
        else:
            board.ensure_ready()
        self.dirty = False

    # -- per-test serial log and record --------------------------------------------------------
    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        from hil.link import SerialLog
        self._reports[nodeid] = []
        self._test_started[nodeid] = (now_iso(), time.monotonic())
        if self.board is not None and self.board.link is not None and self.started:
            path = self.run_dir / "logs" / f"{sanitize_nodeid(nodeid)}.log"
            self._test_logs[nodeid] = path
            self.board.link.log = SerialLog(path, nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._reports.setdefault(report.nodeid, []).append(report)
        if report.failed and report.when in ("setup", "call", "teardown"):
            self.dirty = True

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: Any):
        yield
        path = self._test_logs.get(item.nodeid)
        if path is not None and getattr(self.config.option, "allure_report_dir", None):
            try:
                import allure
                allure.attach.file(str(path), name="serial log", attachment_type=allure.attachment_type.TEXT)
            except Exception as exc:  # noqa: BLE001 - a report attachment must never break a run
                print(f"hil: could not attach {path} to allure: {exc}", file=sys.stderr)

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        path = self._test_logs.pop(nodeid, None)
        if self.board is not None and self.board.link is not None and path is not None:
            self.board.link.log.close()
            self.board.link.log = self.session_log
        reports = self._reports.pop(nodeid, [])
        started, t0 = self._test_started.pop(nodeid, (now_iso(), time.monotonic()))
        if self.writer is None or not reports:
            return
        item = self._item(nodeid)
        outcome, message, longrepr = classify(reports, item)
        self.writer.test(
            nodeid=nodeid, rig=self.rig.name, firmware_profile=self.rig.profile.name, outcome=outcome,
            duration=sum(r.duration for r in reports), started=started, message=message,
            longrepr=longrepr, measurements=item.stash.get(MEASURE_KEY, []) if item else [],
            serial_log=str(path.relative_to(self.run_dir)) if path is not None else None,
            markers=[m.name for m in item.iter_markers() if m.name not in _IGNORED_MARKERS] if item else [])

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._items = {item.nodeid: item for item in session.items}

    def _item(self, nodeid: str) -> pytest.Item | None:
        return getattr(self, "_items", {}).get(nodeid)


def firmware_mismatch(profile: Any, names: tuple, caps: dict, nodeid: str = "") -> str:
    """Why a firmware(...) marker excludes this profile ("" when it matches)."""
    if names and not any(fnmatch.fnmatchcase(profile.name, str(n)) for n in names):
        return f"test needs firmware {' or '.join(map(str, names))}"
    for key, want in caps.items():
        if key in ("accepts", "rejects"):
            versions = list(want) if isinstance(want, (list, tuple, set)) else [want]
            bad = [v for v in versions if profile.accepts(v) != (key == "accepts")]
            if bad:
                verb = "loads" if key == "accepts" else "rejects"
                return (f"test needs a build that {verb} kmodel v{', v'.join(map(str, bad))} "
                        f"(profile loads v{', v'.join(map(str, profile.kpu.load_versions))})")
        elif key == "family":
            if profile.family != want:
                return f"test needs the {want} family"
        elif key == "gc_heap_configurable":
            if profile.memory.gc_heap_configurable != bool(want):
                return f"test needs gc_heap_configurable = {bool(want)}"
        elif key == "v5_loader":
            if bool(profile.kpu.v5_loader) != bool(want):
                return "test needs a kmodel v5 loader" if want else "test needs a build without a v5 loader"
        else:
            raise pytest.UsageError(f"{nodeid}: firmware marker: unknown capability {key!r} "
                                    f"(known: {', '.join(FIRMWARE_CAPS)})")
    return ""


def _longrepr_text(report: pytest.TestReport) -> str:
    if report.longrepr is None:
        return ""
    if isinstance(report.longrepr, tuple):        # a skip: (path, line, reason)
        return str(report.longrepr[2])
    return str(report.longrepr)


def _message(report: pytest.TestReport) -> str:
    if isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
        return reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        text = crash.message
        return one_line(text[len("Failed: "):] if text.startswith("Failed: ") else text)
    text = _longrepr_text(report).strip().splitlines()
    return one_line(text[-1]) if text else ""


def classify(reports: list[pytest.TestReport], item: pytest.Item | None) -> tuple[str, str, str]:
    """(outcome, one-line message, longrepr) of one test from its phase reports."""
    by_when = {r.when: r for r in reports}
    setup, call, teardown = by_when.get("setup"), by_when.get("call"), by_when.get("teardown")
    if setup is not None and setup.failed:
        return "broken", _message(setup), _longrepr_text(setup)
    if setup is not None and setup.skipped:
        if getattr(setup, "wasxfail", None) is not None:
            return "xfailed", setup.wasxfail or "xfail", _longrepr_text(setup)
        return "skipped", _message(setup), _longrepr_text(setup)
    outcome, message, longrepr = "passed", "", ""
    if call is not None:
        xfail = getattr(call, "wasxfail", None)
        if call.failed:
            broken = getattr(call, "hil_broken", False) or (item is not None and item.stash.get(BROKEN_KEY, False))
            outcome = "broken" if broken else "failed"
            message, longrepr = _message(call), _longrepr_text(call)
        elif call.skipped:
            outcome = "xfailed" if xfail is not None else "skipped"
            message, longrepr = (xfail or _message(call)), _longrepr_text(call)
        elif xfail is not None:
            outcome, message = "xpassed", xfail
    if teardown is not None and teardown.failed and outcome in ("passed", "xpassed", "skipped"):
        return "broken", "teardown: " + _message(teardown), _longrepr_text(teardown)
    return outcome, message, longrepr
