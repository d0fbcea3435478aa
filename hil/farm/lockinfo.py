"""What a rig lock file says about its holder (hil.farm.lock keeps the file), and where locks live.

A lock file holds one JSON object padded to RECORD_SIZE bytes, so a renewal is one small write at
offset 0: rig, key, token, owner (user, host, pid, CI job, run id), acquired and expiry times in
seconds since the epoch, and the ttl.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from hil.errors import InfrastructureError

RECORD_SIZE = 1024            # lock JSON padded to this size: a renewal is one write at offset 0
# CI job ids, first found wins: (environment variable, extra variable shown with it)
CI_VARS = (("GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT"), ("CI_JOB_ID", ""), ("BUILDKITE_JOB_ID", ""),
           ("BUILD_TAG", ""), ("CIRCLE_WORKFLOW_JOB_ID", ""), ("TF_BUILD_BUILDID", ""))


def default_lock_dir() -> Path:
    """$HIL_LOCK_DIR, else $XDG_RUNTIME_DIR/k210-hil/locks, else ~/.cache/k210-hil/locks.

    The last two are private to one user on one host: a farm shared by several users or hosts
    points HIL_LOCK_DIR (or --rig-lock-dir) at a directory they all write, e.g. on NFS.
    """
    if os.environ.get("HIL_LOCK_DIR"):
        return Path(os.environ["HIL_LOCK_DIR"])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "k210-hil" / "locks"
    return Path.home() / ".cache" / "k210-hil" / "locks"


def ci_job() -> str:
    """The CI job this process runs in, e.g. ``GITHUB_RUN_ID=123 (GITHUB_RUN_ATTEMPT=2)``; "" outside CI."""
    for var, extra in CI_VARS:
        value = os.environ.get(var)
        if value:
            more = os.environ.get(extra) if extra else None
            return f"{var}={value}" + (f" ({extra}={more})" if more else "")
    return ""


def _user() -> str:
    try:
        import getpass
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return os.environ.get("USER", "") or str(os.getuid())


@dataclass(frozen=True)
class LockInfo:
    """What a lock file says about its holder."""

    rig: str
    key: str
    token: str
    user: str
    host: str
    pid: int
    ci_job: str
    run: str                # the holder's run id (or "")
    acquired: float         # epoch seconds
    expires: float          # epoch seconds; renewed by the holder's heartbeat
    ttl: float

    def to_bytes(self) -> bytes:
        data = json.dumps(asdict(self), sort_keys=True).encode()
        if len(data) >= RECORD_SIZE:
            raise InfrastructureError(f"lock {self.key}: owner record too long ({len(data)} bytes)")
        return data + b"\n" + b" " * (RECORD_SIZE - len(data) - 1)

    @classmethod
    def from_bytes(cls, raw: bytes) -> "LockInfo | None":
        try:
            data = json.loads(raw.decode("utf-8"))
            return cls(rig=str(data["rig"]), key=str(data["key"]), token=str(data["token"]),
                       user=str(data["user"]), host=str(data["host"]), pid=int(data["pid"]),
                       ci_job=str(data.get("ci_job") or ""), run=str(data.get("run") or ""),
                       acquired=float(data["acquired"]), expires=float(data["expires"]),
                       ttl=float(data["ttl"]))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None

    def expired(self, now: float | None = None) -> bool:
        return self.expires <= (time.time() if now is None else now)

    def describe(self, now: float | None = None) -> str:
        """``alice@bench2 pid 4242 (CI job CI_JOB_ID=77) since 13:40:07, lock expires in 52 s``."""
        now = time.time() if now is None else now
        since = datetime.fromtimestamp(self.acquired).strftime("%Y-%m-%d %H:%M:%S")
        left = self.expires - now
        expiry = f"lock expires in {left:.0f} s unless renewed" if left > 0 else "lock expired"
        job = f" (CI job {self.ci_job})" if self.ci_job else ""
        run = f", run {self.run}" if self.run else ""
        return f"{self.user}@{self.host} pid {self.pid}{job}{run} since {since}, {expiry}"


def _read(path: Path) -> tuple[bytes, LockInfo | None] | None:
    """(raw bytes, parsed) of a lock file; None when it does not exist."""
    for attempt in range(3):
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        info = LockInfo.from_bytes(raw)
        if info is not None:
            return raw, info
        time.sleep(0.02 * (attempt + 1))   # maybe a renewal mid-write: look again
    return raw, None


def read_lock(path: Path) -> LockInfo | None:
    """The holder recorded in a lock file (None: no lock, or unreadable)."""
    got = _read(Path(path))
    return got[1] if got else None


def busy_message(rig: str, holder: LockInfo, waited: float, path: Path, now: float | None = None) -> str:
    """One line: which rig, who holds it, how long we waited, where the lock is."""
    alias = f" (the same board as rig {holder.rig})" if holder.rig and holder.rig != rig else ""
    return (f"rig {rig}: busy{alias}: held by {holder.describe(now)}; "
            f"waited {waited:g} s (--rig-wait); lock file {path}")
