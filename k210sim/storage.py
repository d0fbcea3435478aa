"""The simulated board's persistent state: SPI flash image, /flash and /sd trees, board config.

Layout of a state directory (all of it survives power cycles and simulator restarts):

    flash.img      the 16 MiB SPI NOR flash, erased = 0xFF
    flash.journal  the last flash write, kept until it is applied (see FlashImage)
    flashfs/       host directory backing the MaixPy /flash filesystem
    sd/            host directory backing the TF card's /sd (kept while the card is "removed")
    board.json     small board config: {"sd": bool, "gc_heap_size": int, ...}
    sim.lock       flock + pid of the simulator using this directory

Flash writes are atomic: the record (address, bytes, sha256) is written to flash.journal and
fsynced, then applied to flash.img and fsynced. On open, a complete journal record is
re-applied (idempotent: the journal only ever holds the newest write) and a torn one is
discarded, so a killed simulator never leaves half a write in the image. A write replaces the
bytes outright (the flash-mode stub erases before it programs; we do not model NOR's 1->0 rule).
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import struct
import tempfile
import threading
from pathlib import Path
from typing import Any

from k210sim.errors import SimError

JOURNAL_MAGIC = b"HILJ1\0"
_HEAD = struct.Struct("<6scII32s")   # magic, kind (W/E), addr, length, sha256
ERASED = 0xFF


def _record_digest(kind: bytes, addr: int, length: int, data: bytes) -> bytes:
    return hashlib.sha256(kind + struct.pack("<II", addr, length) + data).digest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write a whole file so readers see the old or the new content, never a mix."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


class FlashImage:
    """The board's SPI NOR flash as a file; reads and writes at byte addresses."""

    def __init__(self, path: Path, size: int, faults: Any = None) -> None:
        self.path = Path(path)
        self.size = size
        self.faults = faults
        self._lock = threading.Lock()
        self.journal_path = self.path.with_name(self.path.stem + ".journal")
        self.created = not self.path.exists()
        if self.created:
            self._create()
        actual = self.path.stat().st_size
        if actual != size:
            raise SimError(f"{self.path}: flash image is {actual} bytes, board expects {size}")
        self._fd = os.open(self.path, os.O_RDWR)
        self._jfd = os.open(self.journal_path, os.O_RDWR | os.O_CREAT, 0o644)
        self.recovered = self._recover()

    def _create(self) -> None:
        block = bytes([ERASED]) * (1 << 20)
        fd, tmp = tempfile.mkstemp(prefix=".flash.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                for _ in range(self.size // len(block)):
                    f.write(block)
                f.write(block[: self.size % len(block)])
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        _fsync_dir(self.path.parent)

    def _check(self, addr: int, n: int) -> None:
        if addr < 0 or n < 0 or addr + n > self.size:
            raise ValueError(f"flash access {addr:#x}+{n:#x} outside the {self.size:#x}-byte flash")

    def read(self, addr: int, n: int) -> bytes:
        self._check(addr, n)
        return os.pread(self._fd, n, addr)

    def write(self, addr: int, data: bytes) -> None:
        """Replace flash bytes at addr, atomically and durably."""
        data = bytes(data)
        self._check(addr, len(data))
        self._commit(b"W", addr, len(data), data)

    def erase(self, addr: int, n: int) -> None:
        """Set n bytes at addr to 0xFF."""
        self._check(addr, n)
        self._commit(b"E", addr, n, b"")

    def _commit(self, kind: bytes, addr: int, length: int, data: bytes) -> None:
        if self.faults is not None:
            self.faults.flash_write(addr, length)
        with self._lock:
            self._log(kind, addr, length, data)
            self._apply(kind, addr, length, data)

    def _log(self, kind: bytes, addr: int, length: int, data: bytes) -> None:
        """Make the record durable in the journal (step 1 of a write)."""
        head = _HEAD.pack(JOURNAL_MAGIC, kind, addr, length, _record_digest(kind, addr, length, data))
        os.ftruncate(self._jfd, 0)
        os.pwrite(self._jfd, head + data, 0)
        os.fsync(self._jfd)

    def _apply(self, kind: bytes, addr: int, length: int, data: bytes) -> None:
        """Apply a journalled record to the image (step 2), then retire the journal."""
        payload = data if kind == b"W" else bytes([ERASED]) * length
        view = memoryview(payload)
        done = 0
        while done < length:
            done += os.pwrite(self._fd, view[done:], addr + done)
        os.fsync(self._fd)
        # Clearing need not be durable: a replay of the newest record is idempotent.
        os.ftruncate(self._jfd, 0)

    def _recover(self) -> str | None:
        """Replay a complete journal record, drop a torn one. Returns what was done, if anything."""
        raw = os.pread(self._jfd, _HEAD.size, 0)
        if not raw:
            return None
        outcome = "discarded torn journal"
        if len(raw) == _HEAD.size:
            magic, kind, addr, length, digest = _HEAD.unpack(raw)
            data = os.pread(self._jfd, length, _HEAD.size) if kind == b"W" else b""
            ok = (magic == JOURNAL_MAGIC and kind in (b"W", b"E") and addr + length <= self.size
                  and (kind == b"E" or len(data) == length)
                  and digest == _record_digest(kind, addr, length, data))
            if ok:
                self._apply(kind, addr, length, data)
                return f"replayed {kind.decode()} {addr:#x}+{length:#x}"
        os.ftruncate(self._jfd, 0)
        os.fsync(self._jfd)
        return outcome

    def close(self) -> None:
        for fd in (self._fd, self._jfd):
            try:
                os.close(fd)
            except OSError:
                pass
        self._fd = self._jfd = -1


class StateDirLock:
    """One simulator per state directory: an flock on sim.lock, which also records the pid.

    The kernel drops an flock when its holder dies, so a stale lock from a killed simulator is
    taken over without any pid guessing; the pid is only there to name the holder in errors.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / "sim.lock"
        self._fd = -1

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise SimError(f"state dir {self.path.parent} is not writable: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise SimError(f"state dir {self.path.parent} is in use by simulator pid {holder}") from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            try:
                os.ftruncate(self._fd, 0)
            finally:
                os.close(self._fd)  # closing drops the flock
                self._fd = -1


class BoardStorage:
    """Flash, /flash, /sd and board config of one simulated board (see module docstring)."""

    def __init__(self, state_dir: Path, flash_size: int, faults: Any = None, sd_slot: bool = True) -> None:
        self.state_dir = Path(state_dir)
        self.flashfs_root = self.state_dir / "flashfs"
        self._sd_dir = self.state_dir / "sd"
        self.config_path = self.state_dir / "board.json"
        self._lock = threading.Lock()
        for d in (self.flashfs_root, self._sd_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._config = self._load_config()
        self._sd_slot = sd_slot
        self.flash = FlashImage(self.state_dir / "flash.img", flash_size, faults)

    def _load_config(self) -> dict[str, Any]:
        if not self.config_path.exists():
            return {}
        try:
            data = json.loads(self.config_path.read_text())
        except (OSError, ValueError) as exc:
            raise SimError(f"{self.config_path}: cannot read board config: {exc}") from None
        if not isinstance(data, dict):
            raise SimError(f"{self.config_path}: board config must be a JSON object")
        return data

    def get_config(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self._config.get(key, default)

    def set_config(self, key: str, value: Any) -> None:
        with self._lock:
            new = dict(self._config)
            new[key] = value
            atomic_write(self.config_path, (json.dumps(new, indent=1, sort_keys=True) + "\n").encode())
            self._config = new

    @property
    def sd_present(self) -> bool:
        return self._sd_slot and bool(self.get_config("sd", True))

    def set_sd_present(self, present: bool) -> None:
        self.set_config("sd", bool(present))

    @property
    def sd_root(self) -> Path | None:
        return self._sd_dir if self.sd_present else None

    def close(self) -> None:
        self.flash.close()
