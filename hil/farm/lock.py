"""Rig locks: one user per rig at a time, with an owner and an expiry, for rigs outside labgrid.

A lock is the file ``<lock dir>/<key>.lock`` holding one JSON object (rig, owner: user, host,
pid, CI job; token; acquired and expiry times, seconds since the epoch). How it stays safe
without a lock server, on a local or a shared (NFS) directory:

- **Create** is atomic: the JSON is written and fsynced to a private temporary file first, then
  hard-linked to the lock name; ``link()`` fails when the name exists (like O_EXCL), so a lock
  file is never seen half-written and only one of many racing runs gets it.
- **Renew** (the heartbeat thread, every ttl/3) rewrites the expiry in place through the
  descriptor the owner kept open since creation: a write can only ever land on the owner's own
  file, never on a lock someone else created after taking this one over. The JSON is padded to
  a fixed size so a renewal is one small write at offset 0.
- **Take over** only when expired: the taker hard-links the lock to ``<key>.lock.broken-<token>``
  (this name is unique to that lock and that token, so of several takers only one gets it), then
  removes the lock only if the linked file still holds exactly the bytes it judged stale (a
  renewal in between changes them). A run killed with SIGKILL therefore holds its rig only
  until the expiry. Expiry uses wall-clock time: hosts sharing a lock dir need synchronised
  clocks (NTP); a skew well under the ttl is harmless.
- An owner whose renewal finds the lock gone or replaced (it slept through its own expiry, e.g.
  a suspended VM) records that it lost the lock (``RigLock.lost``) and stops renewing.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from hil.errors import InfrastructureError
from hil.farm.lockinfo import (LockInfo, _read, _user, busy_message, ci_job, default_lock_dir,  # noqa: F401
                               read_lock)

DEFAULT_TTL_S = 60.0
POLL_S = 0.5
STALE_MARKER_S = 30.0         # a takeover marker older than this belongs to a taker that died


class RigLock:
    """A lock on one rig. ``try_acquire()`` -> None (ours) or the holder; ``acquire(wait)``;
    ``start_heartbeat()``; ``release()``. Also a context manager (acquire without waiting)."""

    def __init__(self, lock_dir: Path | str, key: str, rig: str, ttl: float = DEFAULT_TTL_S,
                 run: str = "", clock: Callable[[], float] = time.time) -> None:
        if ttl <= 0:
            raise ValueError(f"lock ttl must be > 0 seconds, got {ttl}")
        self.lock_dir = Path(lock_dir)
        self.key = key
        self.rig = rig
        self.ttl = float(ttl)
        self.run = run
        self.clock = clock
        self.path = self.lock_dir / f"{key}.lock"
        self.token = ""
        self.lost = ""                   # why the lock was lost while held ("" = not lost)
        self._fd: int | None = None
        self._info: LockInfo | None = None
        self._io = threading.Lock()      # renewals (heartbeat thread) vs release (main thread)
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.on_lost: Callable[[str], None] | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None and not self.lost

    # -- acquiring -------------------------------------------------------------------------
    def _make_dir(self) -> None:
        try:
            self.lock_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InfrastructureError(f"lock dir {self.lock_dir}: cannot create it: {exc.strerror or exc}") from None

    def _record(self, token: str, acquired: float) -> LockInfo:
        return LockInfo(rig=self.rig, key=self.key, token=token, user=_user(), host=socket.gethostname(),
                        pid=os.getpid(), ci_job=ci_job(), run=self.run, acquired=acquired,
                        expires=self.clock() + self.ttl, ttl=self.ttl)

    def _create(self) -> bool:
        """Write our record to a private file and link it to the lock name (fails if taken)."""
        token = uuid.uuid4().hex
        info = self._record(token, self.clock())
        tmp = self.lock_dir / f".{self.key}.{token}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        linked = False
        try:
            os.write(fd, info.to_bytes())
            os.fsync(fd)
            try:
                os.link(tmp, self.path)
                linked = True
            except FileExistsError:
                pass
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            if not linked:
                os.close(fd)
        if not linked:
            return False
        self._fd, self._info, self.token, self.lost = fd, info, token, ""
        _fsync_dir(self.lock_dir)
        return True

    def try_acquire(self) -> LockInfo | None:
        """Take the lock if it is free or expired: None when taken, else who holds it."""
        if self._fd is not None:
            return None
        self._make_dir()
        holder: LockInfo | None = None
        for _ in range(5):
            try:
                if self._create():
                    return None
            except OSError as exc:
                raise InfrastructureError(f"lock {self.path}: cannot create: {exc.strerror or exc}") from None
            got = _read(self.path)
            if got is None:
                continue                      # released between our link and our read: try again
            raw, holder = got
            expired = holder.expired(self.clock()) if holder is not None else self._corrupt_expired()
            if not expired:
                if holder is None:            # unreadable but fresh: report it as such
                    holder = LockInfo(self.rig, self.key, "?", "?", "?", 0, "", "", self.clock(),
                                      self.clock() + self.ttl, self.ttl)
                return holder
            self._take_over(raw)
        return holder

    def _corrupt_expired(self) -> bool:
        """A lock file we cannot parse (hand-edited?) expires ttl after its last change."""
        try:
            return os.stat(self.path).st_mtime + max(self.ttl, DEFAULT_TTL_S) <= self.clock()
        except FileNotFoundError:
            return True

    def _take_over(self, judged: bytes) -> None:
        """Remove an expired lock, unless it changed (renewed, or replaced) since we judged it."""
        info = LockInfo.from_bytes(judged)
        tag = info.token if info is not None else f"ino{_ino(self.path)}"
        marker = self.lock_dir / f"{self.key}.lock.broken-{tag}"
        self._clear_dead_marker(marker)
        try:
            os.link(self.path, marker)
        except (FileExistsError, FileNotFoundError):
            return                            # another run is taking it over, or it is gone
        try:
            same_bytes = marker.read_bytes() == judged
            if same_bytes and _ino(self.path) == _ino(marker):
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        finally:
            try:
                os.unlink(marker)
            except FileNotFoundError:
                pass

    def _clear_dead_marker(self, marker: Path) -> None:
        try:
            if os.stat(marker).st_ctime + STALE_MARKER_S < self.clock():
                os.unlink(marker)
        except FileNotFoundError:
            pass

    def acquire(self, wait: float = 0.0, poll: float = POLL_S,
                on_wait: Callable[[LockInfo], None] | None = None) -> None:
        """Take the lock, waiting up to ``wait`` seconds; InfrastructureError naming the holder."""
        deadline = time.monotonic() + max(0.0, wait)
        told = False
        while True:
            holder = self.try_acquire()
            if holder is None:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise InfrastructureError(busy_message(self.rig, holder, wait, self.path, self.clock()))
            if on_wait is not None and not told:
                on_wait(holder)
                told = True
            time.sleep(min(poll, left))

    # -- holding ---------------------------------------------------------------------------
    def renew(self) -> bool:
        """Push the expiry ttl seconds ahead; False (and ``lost`` set) when the lock is no longer ours."""
        with self._io:
            if self._fd is None or self._info is None:
                return False
            if self.lost:
                return False
            try:
                ours = os.fstat(self._fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                ours = False
            if not ours:
                holder = read_lock(self.path)
                self.lost = (f"lock {self.path} was taken over after it expired"
                             + (f" by {holder.describe(self.clock())}" if holder else ""))
            else:
                info = LockInfo(**{**asdict(self._info), "expires": self.clock() + self.ttl})
                try:
                    os.pwrite(self._fd, info.to_bytes(), 0)
                    os.fsync(self._fd)
                    self._info = info
                    return True
                except OSError as exc:
                    self.lost = f"lock {self.path}: renewal failed: {exc.strerror or exc}"
        if self.on_lost is not None:
            self.on_lost(self.lost)
        return False

    def start_heartbeat(self, interval: float | None = None) -> None:
        """Renew every ``interval`` seconds (ttl/3 by default) in a daemon thread until release."""
        if self._beat is not None or self._fd is None:
            return
        every = interval if interval is not None else self.ttl / 3
        self._stop.clear()

        def beat() -> None:
            while not self._stop.wait(every):
                if not self.renew():
                    return

        self._beat = threading.Thread(target=beat, name=f"hil-lock-{self.key}", daemon=True)
        self._beat.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(5)
            self._beat = None

    def release(self) -> None:
        """Stop renewing and remove the lock if it is still ours. Safe to call twice."""
        self.stop_heartbeat()
        with self._io:
            fd, self._fd = self._fd, None
            if fd is None:
                return
            try:
                if not self.lost and os.fstat(fd).st_ino == _ino(self.path):
                    os.unlink(self.path)
            except FileNotFoundError:
                pass
            finally:
                os.close(fd)
                self._info = None

    def __enter__(self) -> "RigLock":
        holder = self.try_acquire()
        if holder is not None:
            raise InfrastructureError(busy_message(self.rig, holder, 0, self.path, self.clock()))
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"RigLock({self.path}, {'held' if self.held else 'not held'})"


def sweep_expired(lock_dir: Path | str, older_than: float = 3600.0) -> int:
    """Remove lock files that expired more than ``older_than`` seconds ago (runs killed long ago
    on rigs nobody took since), by the same safe takeover; returns how many went."""
    lock_dir = Path(lock_dir)
    gone = 0
    now = time.time()
    try:
        paths = list(lock_dir.glob("*.lock"))
    except OSError:
        return 0
    for path in paths:
        got = _read(path)
        if got is None:
            continue
        raw, info = got
        expired_at = info.expires if info is not None else os.stat(path).st_mtime + DEFAULT_TTL_S
        if expired_at + older_than > now:
            continue
        sweeper = RigLock(lock_dir, path.name[:-len(".lock")], info.rig if info else "?")
        sweeper._take_over(raw)
        gone += not path.exists()
    return gone


def _ino(path: Path) -> int:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return -1


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
