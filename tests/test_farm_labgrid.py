"""End to end through labgrid: a coordinator and an exporter on 127.0.0.1 (labgrid's own
programs, started here and stopped by their pids) export two simulated boards as two places;
pytest takes both places, one per xdist worker, runs the suites, and gives them back.

Each board is ``hil sim serve`` with its RFC 2217 front end (exported as a NetworkSerialPort,
protocol rfc2217) and its power behind ``python -m hil.farm.simpower`` (exported as a
NetworkPowerPort of labgrid's ``rest`` model), so the rigs use labgrid's own serial and power
resources exactly as on a real farm.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest

from jsonl import read_records

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
pytest.importorskip("labgrid.remote.client", reason="labgrid is not installed (pip install 'k210-hil[farm]')")
pytest.importorskip("xdist", reason="pytest-xdist is not installed")
pytest.importorskip("k210sim.maixpy", reason="the simulated MaixPy firmware is not built yet")
PLACES = {"lg-a": "simA", "lg-b": "simB"}
EXPORTER = "hilsim"


def _tool(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} not found beside {sys.executable} (labgrid's console scripts)")
    return path


class Procs:
    """Processes this test started; stopped by their own pids, newest first."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, argv: list[str], cwd: Path = ROOT) -> subprocess.Popen:
        err = open(self.logs / f"{name}.log", "wb")
        try:
            proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=err)
        finally:
            err.close()
        self.procs.append(proc)
        return proc

    def line(self, proc: subprocess.Popen, what: str, timeout: float = 30, prefix: bytes = b"") -> str:
        """The first stdout line starting with ``prefix``; fails naming the log if none comes."""
        deadline = time.monotonic() + timeout
        buf = b""
        fd = proc.stdout.fileno()
        while True:
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.startswith(prefix):
                    return line.decode()
            left = deadline - time.monotonic()
            assert left > 0, f"{what} printed no {prefix!r} line within {timeout} s (see {self.logs})"
            ready, _, _ = select.select([fd], [], [], min(left, 0.2))
            if ready:
                chunk = os.read(fd, 4096)
                assert chunk, f"{what} exited with {proc.wait(5)} (see {self.logs})"
                buf += chunk

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()
        self.procs.clear()


class Farm:
    def __init__(self, root: Path, procs: Procs, coordinator: str, sims: dict[str, dict]) -> None:
        self.root = root
        self.procs = procs
        self.coordinator = coordinator
        self.sims = sims                 # place -> the simulator's endpoints
        self.rig_dir = root / "rigs"

    def client(self, *args: str, user: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        env = dict(os.environ)
        if user:
            env["LG_USERNAME"] = user
        done = subprocess.run([str(_tool("labgrid-client")), "-x", self.coordinator, *args], env=env,
                              capture_output=True, text=True, timeout=60)
        if check:
            assert done.returncode == 0, f"labgrid-client {' '.join(args)}: {done.stdout}{done.stderr}"
        return done

    def acquired_by(self, place: str) -> str:
        out = self.client("-p", place, "show").stdout
        for line in out.splitlines():
            if line.strip().startswith("acquired:"):
                return line.split(":", 1)[1].strip()
        raise AssertionError(out)

    def boots(self, place: str) -> int:
        from k210sim.control import ControlClient
        return int(ControlClient(self.sims[place]["control"]).status()["boots"])

    def pytest(self, *args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rig-dir",
                               str(self.rig_dir), "--hil-results", str(self.root / "results"), *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    root = tmp_path_factory.mktemp("labgrid-farm")
    (root / "logs").mkdir()
    procs = Procs(root / "logs")
    try:
        sims, switches = {}, {}
        for place in PLACES.values():
            sim = procs.start(f"sim-{place}", [sys.executable, "-m", "hil", "sim", "serve", "--state",
                                               str(root / f"state-{place}"), "--rfc2217", "127.0.0.1:0",
                                               "--build", "maixpy-v0.6.2-full"])
            sims[place] = json.loads(procs.line(sim, f"simulator {place}"))
            power = procs.start(f"power-{place}", [sys.executable, "-m", "hil.farm.simpower", "--control",
                                                   sims[place]["control"]])
            switches[place] = json.loads(procs.line(power, f"simpower {place}"))["url"]
        (root / "coordinator").mkdir()
        coordinator = procs.start("coordinator", [str(_tool("labgrid-coordinator")), "--listen", "127.0.0.1:0"],
                                  cwd=root / "coordinator")
        address = procs.line(coordinator, "labgrid-coordinator", prefix=b"listening on ").split()[-1]
        config = ""
        for place in PLACES.values():
            port = sims[place]["rfc2217"].rsplit(":", 1)[1]
            config += textwrap.dedent(f"""\
                {place}:
                  NetworkSerialPort:
                    host: 127.0.0.1
                    port: {port}
                    protocol: rfc2217
                    speed: 115200
                  NetworkPowerPort:
                    model: rest
                    host: "{switches[place]}"
                    index: 0
                """)
        (root / "exporter.yaml").write_text(config)
        procs.start("exporter", [str(_tool("labgrid-exporter")), "--coordinator", address, "--name", EXPORTER,
                                 "--hostname", "127.0.0.1", str(root / "exporter.yaml")], cwd=root)
        farm = Farm(root, procs, address, sims)
        deadline = time.monotonic() + 30
        while farm.client("resources", check=False).stdout.count(f"{EXPORTER}/") < 4:
            assert time.monotonic() < deadline, f"the exporter never published its resources (see {root / 'logs'})"
            time.sleep(0.2)
        farm.rig_dir.mkdir()
        for rig, place in PLACES.items():
            farm.client("-p", place, "create")
            farm.client("-p", place, "add-match", f"{EXPORTER}/{place}/*")
            (farm.rig_dir / f"{rig}.toml").write_text(textwrap.dedent(f"""\
                [rig]
                name = "{rig}"
                board = "maix-bit"
                description = "simulated Maix Bit at labgrid place {place}"
                [serial]
                baud = 115200
                [power]
                driver = "labgrid"
                off_time = 0.2
                [firmware]
                profile = "maixpy-v0.6.2-full"
                [labgrid]
                place = "{place}"
                coordinator = "{address}"
                """))
        yield farm
    finally:
        procs.stop_all()


POWER_TEST = '''
import pytest

@pytest.mark.power_cycle
def test_fresh_boot_through_labgrid_power(board, firmware):
    assert board.firmware_version == firmware.version
'''


def test_suites_on_two_labgrid_places_in_parallel(farm: Farm, tmp_path: Path) -> None:
    power_test = tmp_path / "test_lg_power.py"
    power_test.write_text(POWER_TEST)
    boots = {place: farm.boots(place) for place in PLACES.values()}
    done = farm.pytest("--rig", "lg-a", "--rig", "lg-b", "-n", "2", "--dist", "loadfile", "--rig-wait", "10",
                       "suites/test_smoke.py", str(power_test))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "5 passed" in done.stdout
    assert "labgrid place simA" in done.stdout and "labgrid place simB" in done.stdout
    runs = [p for p in (farm.root / "results").iterdir() if p.is_dir() and "lg-a" in p.name]
    run = max(runs, key=lambda p: p.stat().st_mtime)
    headers = [read_records(p)[0] for p in sorted(run.glob("run-*.jsonl"))]
    assert sorted(h["rig"] for h in headers) == ["lg-a", "lg-b"]
    for header in headers:
        place = PLACES[header["rig"]]
        assert header["port"] == farm.sims[place]["rfc2217"] + "?ign_set_control"   # the place's port
        assert header["firmware_version"] == "v0.6.2-75-g973361c0d"
    # the power_cycle test went through labgrid's NetworkPowerDriver to the simulator
    assert sum(farm.boots(p) - boots[p] for p in PLACES.values()) >= 1
    log = next(run.glob("logs/*test_fresh_boot_through_labgrid_power.log")).read_text()
    assert "power labgrid: cycle (place sim" in log and "NetworkPowerDriver" in log
    for place in PLACES.values():
        assert farm.acquired_by(place) == "None", f"{place} still acquired after the run"


def test_place_held_by_someone_else_is_one_line_then_free(farm: Farm) -> None:
    farm.client("-p", "simA", "acquire", user="alice")
    try:
        done = farm.pytest("--rig", "lg-a", "suites/test_smoke.py", timeout=60)
    finally:
        farm.client("-p", "simA", "release", user="alice")
    assert done.returncode == 4
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("ERROR: no free rig after waiting 0 s (--rig-wait): lg-a (labgrid place simA) "
                               "acquired by ") and lines[0].endswith("/alice")


def test_place_released_when_the_run_fails_or_is_interrupted(farm: Farm, tmp_path: Path) -> None:
    (tmp_path / "test_fails.py").write_text("def test_fails(repl):\n    assert repl.eval('1') == 2\n")
    done = farm.pytest("--rig", "lg-b", str(tmp_path / "test_fails.py"), timeout=120)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert farm.acquired_by("simB") == "None"

    mark = tmp_path / "started"
    (tmp_path / "test_hold.py").write_text(textwrap.dedent(f"""\
        import time
        from pathlib import Path

        def test_hold(repl):
            Path({str(mark)!r}).write_text("x")
            time.sleep(60)
        """))
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rig-dir",
                             str(farm.rig_dir), "--hil-results", str(farm.root / "results"), "--rig", "lg-b",
                             str(tmp_path / "test_hold.py")], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not mark.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the held test never started"
            time.sleep(0.05)
        assert farm.acquired_by("simB") != "None"
        os.kill(proc.pid, signal.SIGTERM)      # a cancelled CI job
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert farm.acquired_by("simB") == "None", "SIGTERM left the labgrid place acquired"


@pytest.mark.slow
def test_full_suites_on_two_labgrid_places(farm: Farm) -> None:
    done = farm.pytest("--rig", "lg-a", "--rig", "lg-b", "-n", "2", "suites", timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " failed" not in done.stdout.splitlines()[-1]
    for place in PLACES.values():
        assert farm.acquired_by(place) == "None"
