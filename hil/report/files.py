"""Write report files so a reader never sees half of one, readable as the umask allows (0644 by
default, so a web server can serve the page): hil.atomicfile, with one-line errors."""
from __future__ import annotations

from pathlib import Path

from hil.atomicfile import write_atomic as _write_atomic
from hil.errors import ConfigError


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step (a crash leaves the old file or none)."""
    try:
        _write_atomic(path, text)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from None
