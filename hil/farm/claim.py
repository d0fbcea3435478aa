"""Taking rigs for a run: a lock per rig (hil.farm.lock), or the labgrid place for a labgrid rig.

``Claimer(candidates, ...).claim(want, need, wait)`` goes over the candidate rigs, takes every one
that is free until it has ``want`` of them, and waits (up to ``wait`` seconds) while it has fewer
than ``need``. What it could not get is one InfrastructureError line naming each busy rig and
who holds it. ``release_all()`` gives everything back (also what a failed claim took).

Lock keys name the board, not the rig file, so two rig files for one board share a lock:
- a simulated rig: its state directory (``<results>/sim-state/<rig>``); runs with different
  results directories run different simulated boards side by side; an emulated rig ([qemu])
  likewise (``<results>/emulator-state/<rig>``: two emulators must not share its flash file);
- a device path: this host plus the device's real path (by-id links resolve to the ttyUSB);
- a network port: host and TCP port of the URL; a device behind spy:// or alt://: that device;
  another URL (hwgrep://, loop://): this host and the URL.
Labgrid rigs take no file lock: the coordinator decides who holds a place.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

from hil.errors import InfrastructureError
from hil.farm.lock import DEFAULT_TTL_S, LockInfo, RigLock, busy_message, default_lock_dir, sweep_expired
from hil.ports import wrapped_device
from hil.rig import RigSpec

POLL_S = 0.5
LABGRID_POLL_S = 1.0
Note = Callable[[str], None]


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


def sim_state_dir(rig: RigSpec, results: Path) -> Path:
    """Where the board layer keeps a simulated rig's state (hil.board.Board's default)."""
    return Path(results) / "sim-state" / rig.name


def lock_key(rig: RigSpec, results: Path) -> str:
    """The name of the lock file for the board behind ``rig`` (see the module docstring)."""
    if rig.sim is not None:
        state = str(sim_state_dir(rig, results).absolute())
        return f"sim-{_safe(rig.name)}-{hashlib.sha1(state.encode()).hexdigest()[:10]}"
    if rig.emulator is not None:      # its flash and card are files in its state directory
        state = str((Path(results) / "emulator-state" / rig.name).absolute())
        return f"{rig.emulator.kind}-{_safe(rig.name)}-{hashlib.sha1(state.encode()).hexdigest()[:10]}"
    port = wrapped_device(rig.serial.port) or rig.serial.port   # spy:///dev/x locks /dev/x
    if "://" in port:
        parts = urlsplit(port)
        if parts.scheme in ("rfc2217", "socket"):
            return f"net-{_safe(parts.hostname or '')}-{parts.port or 0}"
        return f"url-{_safe(socket.gethostname())}-{_safe(port)}"     # hwgrep://, loop://, cp2110://
    return f"dev-{_safe(socket.gethostname())}-{_safe(os.path.realpath(port))}"


@dataclass
class Claim:
    """One rig taken for this run: by a lock, or as an acquired labgrid place."""

    rig: RigSpec                      # with the labgrid place's serial port filled in
    lock: RigLock | None = None
    place: object | None = None       # hil.farm.labgrid.LabgridPlace

    @property
    def how(self) -> str:
        if self.place is not None:
            return f"labgrid place {self.place.name} @ {self.place.address}"
        if self.lock is not None:
            return f"lock {self.lock.path}"
        return "no lock"

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
        if self.place is not None:
            from hil.farm.labgrid import forget
            try:
                self.place.release()
            finally:
                forget(self.place)


class Claimer:
    """Claims rigs for one run; see the module docstring."""

    def __init__(self, candidates: list[RigSpec], *, results: Path, lock_dir: Path,
                 ttl: float = DEFAULT_TTL_S, run_id: str = "", note: Note = lambda _: None,
                 on_lost: Callable[[str], None] | None = None) -> None:
        self.candidates = list(candidates)
        self.results = Path(results)
        self.lock_dir = Path(lock_dir)
        self.ttl = ttl
        self.run_id = run_id
        self.note = note
        self.on_lost = on_lost
        self.claims: list[Claim] = []
        self._holders: dict[str, tuple[LockInfo, Path]] = {}
        self._swept = False

    # -- one attempt per rig -----------------------------------------------------------------
    def _try(self, rig: RigSpec) -> tuple[Claim | None, str]:
        """(the claim, "") when taken; (None, who holds it) when not."""
        if rig.labgrid is not None:
            return self._try_place(rig)
        port = wrapped_device(rig.serial.port) or rig.serial.port
        if rig.sim is None and rig.emulator is None and "://" not in port and not os.path.exists(port):
            # no such device here: nothing to share, and the board layer's "cannot open serial
            # port ... no such device" says more than a lock could
            return Claim(rig), ""
        if not self._swept:
            self._swept = True
            sweep_expired(self.lock_dir)   # leftovers of runs killed long ago
        lock = RigLock(self.lock_dir, lock_key(rig, self.results), rig.name, self.ttl, self.run_id)
        holder = lock.try_acquire()
        if holder is not None:
            self._holders[rig.name] = (holder, lock.path)
            return None, self._held(rig, holder, lock)
        lock.on_lost = self.on_lost
        lock.start_heartbeat()
        self.note(f"rig {rig.name}: locked ({lock.path}, expiry {self.ttl:g} s, renewed every "
                  f"{self.ttl / 3:g} s)")
        return Claim(rig, lock=lock), ""

    def _held(self, rig: RigSpec, holder: LockInfo, lock: RigLock) -> str:
        alias = f" (the same board as rig {holder.rig})" if holder.rig and holder.rig != rig.name else ""
        return f"{rig.name}{alias} held by {holder.describe(lock.clock())}"

    def _try_place(self, rig: RigSpec) -> tuple[Claim | None, str]:
        from hil.farm.labgrid import LabgridPlace, register
        assert rig.labgrid is not None
        place = LabgridPlace(rig.labgrid.address, rig.labgrid.place, rig.name, self.note)
        why = place.try_acquire()
        if why is not None:
            return None, f"{rig.name} (labgrid place {rig.labgrid.place}) {why}"
        register(place)
        claim = Claim(rig, place=place)
        try:
            if rig.port_from_place:
                url = place.serial_url()
                claim.rig = replace(rig, serial=replace(rig.serial, port=url))
                self.note(f"rig {rig.name}: serial port {url} from labgrid place {place.name}")
        except BaseException:
            claim.release()
            raise
        return claim, ""

    # -- the run's rigs ------------------------------------------------------------------------
    def claim(self, want: int, need: int, wait: float,
              on_wait: Callable[[str], None] | None = None) -> list[Claim]:
        """Take up to ``want`` free rigs; wait up to ``wait`` s while fewer than ``need`` are free."""
        want = max(1, min(want, len(self.candidates)))
        need = max(1, min(need, want))
        deadline = time.monotonic() + max(0.0, wait)
        told = False
        poll = LABGRID_POLL_S if any(r.labgrid for r in self.candidates) else POLL_S
        try:
            while True:
                busy: list[str] = []
                taken = {c.rig.name for c in self.claims}
                for rig in self.candidates:
                    if len(self.claims) >= want:
                        break
                    if rig.name in taken:
                        continue
                    claim, why = self._try(rig)
                    if claim is not None:
                        self.claims.append(claim)
                    else:
                        busy.append(why)
                if len(self.claims) >= need:
                    return list(self.claims)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise InfrastructureError(self._busy_line(busy, wait))
                if on_wait is not None and not told:
                    more = need - len(self.claims)
                    on_wait(f"waiting up to {wait:g} s (--rig-wait) for {more} {'rig' if more == 1 else 'rigs'}: "
                            + "; ".join(busy))
                    told = True
                time.sleep(min(poll, left))
        except BaseException:
            self.release_all()
            raise

    def _busy_line(self, busy: list[str], wait: float) -> str:
        if len(self.candidates) == 1 and self.candidates[0].name in self._holders:
            rig = self.candidates[0]
            holder, path = self._holders[rig.name]
            return busy_message(rig.name, holder, wait, path)
        return f"no free rig after waiting {wait:g} s (--rig-wait): " + "; ".join(busy)

    def release_all(self) -> list[str]:
        """Give back every rig; returns the problems (one line each) instead of raising."""
        problems = []
        claims, self.claims = self.claims, []
        for claim in reversed(claims):
            try:
                claim.release()
            except Exception as exc:  # noqa: BLE001 - release the others whatever happens
                problems.append(f"rig {claim.rig.name}: {exc}")
        return problems


@contextlib.contextmanager
def take_rig(rig: RigSpec, *, results: Path, lock_dir: Path | None = None, wait: float = 0.0,
             ttl: float = DEFAULT_TTL_S, note: Note = lambda _: None) -> Iterator[RigSpec]:
    """Hold one rig for a block outside pytest (``hil rigs check --probe``, scripts): its lock,
    or its labgrid place; yields the rig with a labgrid place's serial port filled in.

        with take_rig(rig, results=Path("results"), wait=60) as rig:
            with Board(rig, results=Path("results")) as board: ...
    """
    claimer = Claimer([rig], results=results, lock_dir=lock_dir or default_lock_dir(), ttl=ttl, note=note)
    claims = claimer.claim(1, 1, wait)
    try:
        yield claims[0].rig
    finally:
        problems = claimer.release_all()
        if "hil.farm.labgrid" in sys.modules:
            from hil.farm.labgrid import close_all
            close_all()
        if problems:
            raise InfrastructureError("; ".join(problems))
