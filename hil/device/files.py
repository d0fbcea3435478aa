"""The file cache on the board: a file is put there only when the board's copy differs (sha256).

``files.ensure(path, sha256, data=..., fetch=..., recipe=...)`` makes ``path`` hold exactly the
bytes whose sha256 is given, by the cheapest honest route, and says which it took:

- ``known``: this session verified it already (and no reboot since could have changed it);
- ``present``: the board's copy hashes right (files survive between tests and between nights);
- ``written on the board``: the flavour generates it from the recipe (a program shorter than
  the file: MaixPy writes kmodel v3 itself);
- ``derived on the board``: a prefix of a file already verified, with a few bytes patched;
- ``uploaded``: ``data`` (or ``fetch()`` for big ones) through the device's verified put.

Every route ends with the board's sha256 equal to the one asked for, else TransferError. The
cache subscribes to the board's events: a reboot that may have touched storage (an ISP write, a
reboot in the middle of a write, a new build) makes it check the board again.
"""
from __future__ import annotations

from typing import Any, Callable

from hil.board.state import RebootCause
from hil.device.api import Device, Unsupported
from hil.errors import TransferError

PATCH_LIMIT = 512            # derive on the board when at most this many bytes differ
PATCH_RUNS = 32
KEEP_BYTES = 64 * 1024       # files up to this size are remembered as bases for deriving


def patches(base: bytes, target: bytes) -> list[tuple[int, str]] | None:
    """Runs (offset, hex) where ``target`` differs from ``base[:len(target)]``; None when too
    many bytes differ (or target is longer)."""
    if len(target) > len(base):
        return None
    runs: list[list[int]] = []
    changed = 0
    for i, (a, b) in enumerate(zip(base, target)):
        if a == b:
            continue
        changed += 1
        if changed > PATCH_LIMIT:
            return None
        if runs and i - runs[-1][1] <= 4:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    if len(runs) > PATCH_RUNS:
        return None
    return [(a, target[a:b].hex()) for a, b in runs]


class FileCache:
    def __init__(self, device: Device) -> None:
        self.device = device
        self.steps = device.lifecycle.steps
        self.files: dict[str, tuple[str, bytes | None]] = {}   # path -> (sha256, bytes of a small file)
        self.dirs: set[str] = set()
        device.lifecycle.subscribe(self)

    # -- board events ------------------------------------------------------------------------------
    def rebooted(self, cause: RebootCause) -> None:
        if not cause.keeps_files:
            self.files.clear()
            self.dirs.clear()

    def reconnected(self) -> None:
        pass

    # -- what the cache knows --------------------------------------------------------------------------
    def forget(self, path: str) -> None:
        """``path`` was changed behind the cache's back."""
        self.files.pop(path, None)

    def known(self, path: str) -> str | None:
        """The sha256 this session verified ``path`` to hold (None: not known)."""
        have = self.files.get(path)
        return have[0] if have is not None else None

    def holds(self, path: str, sha256: str, data: bytes | None = None) -> None:
        """``path`` on the board is known to hash to ``sha256`` (written by someone else)."""
        self.files[path] = (sha256, data if data is not None and len(data) <= KEEP_BYTES else None)

    def makedirs(self, path: str) -> None:
        """Every directory of ``path`` below a mount point (/sd), made once per session."""
        if path in self.dirs:
            return
        parts = [p for p in path.split("/") if p]
        for i in range(2, len(parts) + 1):        # /sd itself is the mount point
            sub = "/" + "/".join(parts[:i])
            if sub not in self.dirs:
                self.device.mkdir(sub)
                self.dirs.add(sub)

    def board_sha256(self, path: str) -> str | None:
        """sha256 of a file on the board, None when it does not exist."""
        return self.device.sha256(path) if self.device.exists(path) else None

    # -- routes ------------------------------------------------------------------------------------------
    def ensure(self, path: str, sha256: str, *, data: bytes | None = None,
               fetch: Callable[[], bytes] | None = None, recipe: Any = None) -> str:
        """Make ``path`` hold the bytes whose sha256 is ``sha256``; the route taken."""
        with self.steps("file", path=path) as step:
            route = step.args["route"] = self._ensure(path, sha256, data, fetch, recipe)
            return route

    def _ensure(self, path: str, sha: str, data: bytes | None, fetch: Callable[[], bytes] | None,
                recipe: Any) -> str:
        parent = path.rsplit("/", 1)[0]
        if parent.startswith("/sd/"):
            self.makedirs(parent)
        have = self.files.get(path)
        if have is not None and have[0] == sha:
            return "known"
        if have is None and self.board_sha256(path) == sha:
            self.holds(path, sha, data)
            return "present"
        if recipe is not None and self.device.can_generate(recipe):
            got, route = self.device.generate(path, recipe), "written on the board"
        elif data is not None and self._derive(path, data, sha):
            got, route = sha, "derived on the board"
        else:
            payload = data if data is not None else (fetch() if fetch is not None else None)
            if payload is None:
                raise ValueError(f"{path}: no bytes to upload and no other route")
            got, route = self.device.put(payload, path), "uploaded"
        if got != sha:
            self.forget(path)
            raise TransferError(f"{path}: {route}, the board holds sha256 {got[:16]}..., expected {sha[:16]}...")
        self.holds(path, sha, data)
        return route

    def _derive(self, path: str, data: bytes, sha: str) -> bool:
        """Make ``path`` from a small file this session verified; False when none is close enough."""
        for base_path, (_, base) in list(self.files.items()):
            if base is None or base_path == path:
                continue
            runs = patches(base, data)
            if runs is None:
                continue
            try:
                if self.device.derive(base_path, len(data), runs, sha, path):
                    return True
            except Unsupported:
                return False
        return False

    def generate(self, path: str, recipe: Any) -> str:
        """Write the model ``recipe`` describes at ``path`` on the board, unconditionally (a probe
        model that changes every time); its sha256."""
        got = self.device.generate(path, recipe)
        self.holds(path, got)
        return got

    def sized(self, path: str, recipe: Any) -> str:
        """Write at ``path``, unconditionally, a model the loader treats as ``recipe``'s (the
        exact one where the flavour generates models, else its lead grown to size:
        Device.write_sized); the board's sha256."""
        got = self.device.write_sized(path, recipe)
        self.holds(path, got)
        return got
