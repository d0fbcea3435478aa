"""Two pytest runs on one rig: the second waits for the first, a killed run frees the rig after
the lock's expiry, SIGTERM gives it back at once. Real pytest subprocesses, a fake MaixPy REPL
on socket:// (the rig), a private lock dir."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hil.farm.lock import read_lock
from jsonl import read_records
from test_repl import FakeRepl

HOLD = '''
import os, time
from pathlib import Path

def test_hold(repl):
    assert repl.eval("1 + 1") == 2
    Path(os.environ["HIL_TEST_MARK"]).write_text(str(time.time()))
    release = Path(os.environ["HIL_TEST_RELEASE"])
    deadline = time.monotonic() + 60
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
'''


class ReusableFake(FakeRepl):
    """The fake REPL, serving one connection after another (one pytest run after another)."""

    def _serve(self) -> None:
        while not self._stop.is_set():
            FakeRepl._serve(self)


@pytest.fixture
def rig_dir(tmp_path: Path):
    fake = ReusableFake(raw_paste="old")
    (tmp_path / "rigs").mkdir()
    (tmp_path / "rigs" / "fake.toml").write_text(textwrap.dedent(f"""\
        [rig]
        name = "fake"
        board = "maix-bit"
        [serial]
        port = "{fake.url}"
        boot_timeout = 2.0
        [power]
        driver = "none"
        [firmware]
        profile = "maixpy-v0.6.2-full"
        [storage]
        sd = false
        """))
    (tmp_path / "test_hold.py").write_text(HOLD)
    yield tmp_path
    fake.close()


class Run:
    """One pytest run in the background: its marker, release file and stderr file."""

    def __init__(self, cwd: Path, name: str, *args: str, released: bool = False) -> None:
        self.mark = cwd / f"{name}.mark"
        self.release_file = cwd / f"{name}.release"
        self.stderr_path = cwd / f"{name}.stderr"
        if released:
            self.release_file.write_text("go")
        env = {**os.environ, "HIL_TEST_MARK": str(self.mark), "HIL_TEST_RELEASE": str(self.release_file)}
        with open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen(pytest_argv(name, *args), cwd=cwd, env=env,
                                         stdout=subprocess.DEVNULL, stderr=err)

    def wait_mark(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.mark.exists():
            assert self.proc.poll() is None, f"run ended early: {self.stderr}"
            assert time.monotonic() < deadline, "the run's test never started"
            time.sleep(0.05)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def release(self) -> None:
        self.release_file.write_text("go")

    def finish(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def pytest_argv(name: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--rig", "fake",
            "--rig-dir", "rigs", "--hil-results", f"results-{name}", "--rig-lock-dir", "locks",
            *args, "test_hold.py"]


def run_now(cwd: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HIL_TEST_MARK": str(cwd / f"{name}.mark"),
           "HIL_TEST_RELEASE": str(cwd / f"{name}.mark")}   # no hold: the mark releases itself
    return subprocess.run(pytest_argv(name, *args), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def lock_file(cwd: Path) -> Path:
    locks = list((cwd / "locks").glob("*.lock"))
    assert len(locks) == 1, locks
    return locks[0]


def test_second_run_waits_for_the_first_then_runs(rig_dir: Path) -> None:
    first = Run(rig_dir, "first")
    try:
        first.wait_mark()
        holder = read_lock(lock_file(rig_dir))
        assert holder is not None and holder.pid == first.proc.pid and holder.rig == "fake"

        # no patience: one line naming the holder
        busy = run_now(rig_dir, "impatient", "--rig-wait", "0.5")
        assert busy.returncode == 4, busy.stdout + busy.stderr
        lines = [line for line in busy.stderr.splitlines() if line.strip()]
        assert lines[0].startswith("hil: waiting up to 0.5 s (--rig-wait) for 1 rig: fake held by "), lines
        lines = lines[1:]
        assert len(lines) == 1, lines
        assert lines[0].startswith("ERROR: rig fake: busy: held by ")
        assert f"pid {first.proc.pid}" in lines[0] and "waited 0.5 s (--rig-wait)" in lines[0]
        assert str(lock_file(rig_dir).relative_to(rig_dir)) in lines[0]
        assert not (rig_dir / "impatient.mark").exists()

        # patience: waits while the first holds the rig, runs when it is given back
        second = Run(rig_dir, "second", "--rig-wait", "60", released=True)
        try:
            deadline = time.monotonic() + 30
            while "waiting up to" not in second.stderr:
                assert second.proc.poll() is None, second.stderr
                assert time.monotonic() < deadline, "the second run never said it waits"
                time.sleep(0.05)
            assert f"pid {first.proc.pid}" in second.stderr
            time.sleep(1.0)
            assert not second.mark.exists(), "the second run ran its test on a held rig"
            first.release()
            assert first.finish() == 0, first.stderr
            assert second.finish() == 0, second.stderr
        finally:
            second.kill()
        assert float(second.mark.read_text()) > float(first.mark.read_text())
        assert not list((rig_dir / "locks").glob("*.lock")), "a finished run left its lock"
        for name in ("first", "second"):
            runs = [p for p in (rig_dir / f"results-{name}").iterdir() if p.is_dir()]
            records = read_records(runs[0])
            assert [r["outcome"] for r in records if r["type"] == "test"] == ["passed"]
    finally:
        first.release()
        first.kill()


def test_killed_run_frees_its_rig_after_the_expiry(rig_dir: Path) -> None:
    # The "early" run below must start (a fresh pytest: ~1-3 s on a busy 2-core machine) while the
    # dead run's lock is still live: at least 2/3 of the expiry after the kill, 6 s here.
    ttl = 9.0
    victim = Run(rig_dir, "victim", "--rig-lock-ttl", str(ttl))
    try:
        victim.wait_mark()
        time.sleep(ttl * 0.7)      # the heartbeat has renewed it at least once
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.finish(10)
        killed = time.monotonic()
    finally:
        victim.kill()
    holder = read_lock(lock_file(rig_dir))
    assert holder is not None and holder.pid == victim.proc.pid and not holder.expired()
    busy = run_now(rig_dir, "early", "--rig-wait", "0")
    assert busy.returncode == 4 and f"pid {victim.proc.pid}" in busy.stderr, busy.stderr

    after = run_now(rig_dir, "after", "--rig-wait", "30")
    assert after.returncode == 0, after.stdout + after.stderr
    took = time.monotonic() - killed
    assert took < ttl + 15, f"the rig came free {took:.1f} s after the kill (ttl {ttl} s)"
    assert not list((rig_dir / "locks").glob("*.lock"))


def test_sigterm_gives_the_rig_back_at_once(rig_dir: Path) -> None:
    run = Run(rig_dir, "term", "--rig-lock-ttl", "120")
    try:
        run.wait_mark()
        lock = lock_file(rig_dir)
        os.kill(run.proc.pid, signal.SIGTERM)
        code = run.finish(30)
    finally:
        run.kill()
    assert code != 0
    assert not lock.exists(), "SIGTERM left the rig locked until its expiry"
    after = run_now(rig_dir, "after", "--rig-wait", "0")
    assert after.returncode == 0, after.stdout + after.stderr
