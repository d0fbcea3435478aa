"""Rig locks (hil.farm.lock): owner, expiry, heartbeat, waiting, safe takeover, killed holders."""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hil.errors import InfrastructureError
from hil.farm.lock import STALE_MARKER_S, LockInfo, RigLock, ci_job, default_lock_dir, read_lock


def test_acquire_writes_owner_and_release_removes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GITHUB_RUN_ID", "CI_JOB_ID", "BUILDKITE_JOB_ID", "BUILD_TAG", "CIRCLE_WORKFLOW_JOB_ID",
                "TF_BUILD_BUILDID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CI_JOB_ID", "4711")
    lock = RigLock(tmp_path / "locks", "net-127.0.0.1-7000", "bench3", ttl=30, run="20261125-sim")
    assert lock.try_acquire() is None and lock.held
    info = read_lock(lock.path)
    assert info is not None
    assert (info.rig, info.pid, info.ci_job, info.run) == ("bench3", os.getpid(), "CI_JOB_ID=4711", "20261125-sim")
    assert 29 < info.expires - time.time() <= 30
    assert json.loads(lock.path.read_bytes())["token"] == lock.token
    assert not [p for p in lock.path.parent.iterdir() if p.name != lock.path.name]   # no temp files left
    lock.release()
    assert not lock.path.exists() and not lock.held
    lock.release()   # twice is fine


def test_ci_job_names_github_run_and_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI_JOB_ID", raising=False)
    monkeypatch.setenv("GITHUB_RUN_ID", "99")
    monkeypatch.setenv("GITHUB_RUN_ATTEMPT", "2")
    assert ci_job() == "GITHUB_RUN_ID=99 (GITHUB_RUN_ATTEMPT=2)"


def test_default_lock_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HIL_LOCK_DIR", str(tmp_path / "shared"))
    assert default_lock_dir() == tmp_path / "shared"
    monkeypatch.delenv("HIL_LOCK_DIR")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    assert default_lock_dir() == tmp_path / "run" / "k210-hil" / "locks"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert default_lock_dir() == Path.home() / ".cache" / "k210-hil" / "locks"


def test_second_lock_waits_then_fails_naming_the_holder(tmp_path: Path) -> None:
    first = RigLock(tmp_path, "k", "sim", ttl=30)
    first.acquire()
    second = RigLock(tmp_path, "k", "sim", ttl=30)
    holder = second.try_acquire()
    assert holder is not None and holder.token == first.token and not second.held
    seen: list[LockInfo] = []
    start = time.monotonic()
    with pytest.raises(InfrastructureError) as info:
        second.acquire(wait=0.4, poll=0.05, on_wait=seen.append)
    assert 0.35 < time.monotonic() - start < 3
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("rig sim: busy: held by ")
    assert f"pid {os.getpid()}" in text and "waited 0.4 s (--rig-wait)" in text and str(first.path) in text
    assert len(seen) == 1   # told once that it waits
    first.release()


def test_waiter_gets_the_rig_when_the_holder_releases(tmp_path: Path) -> None:
    first = RigLock(tmp_path, "k", "sim", ttl=30)
    first.acquire()
    timer = threading.Timer(0.3, first.release)
    timer.start()
    second = RigLock(tmp_path, "k", "sim", ttl=30)
    try:
        second.acquire(wait=10, poll=0.05)
        assert second.held and read_lock(second.path).token == second.token
    finally:
        timer.join()
        second.release()


def test_alias_of_the_same_board_is_named(tmp_path: Path) -> None:
    with RigLock(tmp_path, "host-dev-ttyUSB0", "maixbit"):
        with pytest.raises(InfrastructureError, match=r"rig bench: busy \(the same board as rig maixbit\)"):
            with RigLock(tmp_path, "host-dev-ttyUSB0", "bench"):
                pass


def test_heartbeat_keeps_a_short_lock_alive(tmp_path: Path) -> None:
    holder = RigLock(tmp_path, "k", "sim", ttl=0.4)
    holder.acquire()
    holder.start_heartbeat()
    try:
        other = RigLock(tmp_path, "k", "sim", ttl=0.4)
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            assert other.try_acquire() is not None, "a renewed lock was taken over"
            time.sleep(0.1)
    finally:
        holder.release()
    assert not holder.path.exists()


def test_expired_lock_is_taken_over_and_the_old_owner_knows(tmp_path: Path) -> None:
    old = RigLock(tmp_path, "k", "sim", ttl=0.2)
    old.acquire()                       # no heartbeat: as if the process were frozen
    time.sleep(0.3)
    new = RigLock(tmp_path, "k", "sim", ttl=30)
    assert new.try_acquire() is None
    lost: list[str] = []
    old.on_lost = lost.append
    assert old.renew() is False and old.lost and lost == [old.lost]
    assert "taken over after it expired" in old.lost
    old.release()                       # must not remove the new owner's lock
    assert read_lock(new.path).token == new.token
    assert not list(tmp_path.glob("*broken*"))
    new.release()


def _race(lock_dir: str, go: float, results: str) -> None:
    lock = RigLock(lock_dir, "k", "sim", ttl=30)
    while time.time() < go:
        time.sleep(0.001)
    if lock.try_acquire() is None:
        Path(results, f"won-{os.getpid()}").write_text("x")
        time.sleep(1.0)
        lock.release()


def test_many_takers_of_an_expired_lock_one_wins(tmp_path: Path) -> None:
    stale = RigLock(tmp_path / "locks", "k", "sim", ttl=0.05)
    stale.acquire()
    os.close(stale._fd)   # the holder "dies": its file stays, nobody renews
    stale._fd = None
    time.sleep(0.1)
    results = tmp_path / "won"
    results.mkdir()
    ctx = multiprocessing.get_context("fork")
    go = time.time() + 0.5
    procs = [ctx.Process(target=_race, args=(str(tmp_path / "locks"), go, str(results))) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(20)
    assert len(list(results.iterdir())) == 1
    assert not (tmp_path / "locks" / "k.lock").exists()


def test_unreadable_lock_file_counts_as_held_until_old(tmp_path: Path) -> None:
    path = tmp_path / "k.lock"
    path.write_text("garbage")
    lock = RigLock(tmp_path, "k", "sim", ttl=1)
    holder = lock.try_acquire()
    assert holder is not None and holder.user == "?"
    old = time.time() - 3600
    os.utime(path, (old, old))
    assert lock.try_acquire() is None
    lock.release()


def test_takeover_marker_of_a_dead_taker_is_cleared(tmp_path: Path) -> None:
    stale = RigLock(tmp_path, "k", "sim", ttl=0.05)
    stale.acquire()
    token = stale.token
    os.close(stale._fd)
    stale._fd = None
    os.link(tmp_path / "k.lock", tmp_path / f"k.lock.broken-{token}")   # a taker died mid-takeover
    time.sleep(0.1)
    lock = RigLock(tmp_path, "k", "sim", ttl=30)
    assert lock.try_acquire() is not None        # the marker is fresh: someone may be at it
    # ctime cannot be set back: a taker whose clock has moved on sees an old marker instead
    later = RigLock(tmp_path, "k", "sim", ttl=30, clock=lambda: time.time() + STALE_MARKER_S + 1)
    assert later.try_acquire() is None
    later.release()
    lock.release()


HOLDER = """
import sys, time
from hil.farm.lock import RigLock
lock = RigLock(sys.argv[1], "k", "sim", ttl=float(sys.argv[2]))
lock.acquire()
lock.start_heartbeat()
print("held", flush=True)
time.sleep(60)
"""


def test_killed_holder_frees_the_rig_after_the_expiry(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), "1.0"], stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parent.parent)
    try:
        assert proc.stdout.readline().strip() == "held"
        time.sleep(1.2)   # longer than the ttl: only the heartbeat keeps it
        lock = RigLock(tmp_path, "k", "sim", ttl=30)
        assert lock.try_acquire() is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        killed = time.monotonic()
        lock.acquire(wait=5, poll=0.05)
        assert time.monotonic() - killed < 1.5    # within one ttl of the kill
        lock.release()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()


def test_sweep_removes_only_long_expired_locks(tmp_path: Path) -> None:
    from hil.farm.lock import sweep_expired
    old = RigLock(tmp_path, "old", "a", ttl=0.05, clock=lambda: time.time() - 7200)
    old.acquire()
    os.close(old._fd)          # its run was killed two hours ago
    old._fd = None
    recent = RigLock(tmp_path, "recent", "b", ttl=0.05)
    recent.acquire()
    os.close(recent._fd)       # killed a moment ago: expired, but left for a takeover
    recent._fd = None
    live = RigLock(tmp_path, "live", "c", ttl=60)
    live.acquire()
    time.sleep(0.1)
    assert sweep_expired(tmp_path, older_than=3600) == 1
    assert sorted(p.name for p in tmp_path.glob("*.lock")) == ["live.lock", "recent.lock"]
    live.release()
