"""Reading a file a user names on the command line: a regular file, and at most what the job needs.

A FIFO would block forever, /dev/zero would fill the memory, a 2 GB file would take minutes:
``read_regular`` opens without blocking, refuses anything but a regular file, and reads at most
``limit`` bytes, each refusal one line naming the file.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Callable

from hil.errors import ConfigError

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: Path | str, error: Callable[[str], Exception] = ConfigError) -> tuple[int, int]:
    """(descriptor, size) of a regular file, opened without blocking; ``error`` otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{path}: cannot read: no such file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise error(f"{path}: {_kind(info.st_mode)}, not a regular file")
    return fd, info.st_size


def read_regular(path: Path | str, limit: int, what: str, error: Callable[[str], Exception] = ConfigError) -> bytes:
    """The whole of a regular file of at most ``limit`` bytes (``what`` it should be, for the error)."""
    fd, size = open_regular(path, error)
    try:
        if size > limit:
            raise error(f"{path}: {size} bytes, more than any {what} ({limit} bytes at most)")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:     # it grew while read
        raise error(f"{path}: more than {limit} bytes, more than any {what}")
    return data


def read_head(path: Path | str, n: int, error: Callable[[str], Exception] = ConfigError) -> tuple[bytes, int]:
    """(the first ``n`` bytes, the file's size) of a regular file."""
    fd, size = open_regular(path, error)
    try:
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(n), size
    finally:
        os.close(fd)
