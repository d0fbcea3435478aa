"""Write a file so that no reader ever sees half of it, with the mode a plain ``open()`` gives.

The data goes to a temporary file beside the target, is flushed and fsynced, then renamed over
it: a crash leaves the old file or none. ``tempfile.mkstemp`` makes its file 0600 whatever the
umask says; report pages and records are meant to be served and shared, so the file gets
``0666 & ~umask`` before the rename (0644 under the usual umask 022), as ``open()`` would give.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def current_umask() -> int:
    """The process's umask, read without changing it where Linux allows (/proc), so a thread
    creating a file meanwhile never sees a umask of 0."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path | str, data: bytes | str, *, fsync: bool = True) -> None:
    """Replace ``path`` with ``data`` in one step; OSError on failure (no temporary file left)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
            out.flush()
            if fsync:
                os.fsync(out.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
