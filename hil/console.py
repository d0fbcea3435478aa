"""pexpect over a link: expect with a timeout, and errors that show what the board last said.

The console owns the one read buffer of the session: ``expect`` (pexpect patterns) and
``read_until``/``read`` (plain markers, for the REPL's framing and for bulk data) take bytes from
the same place, so nothing read by one is lost to the other.

pexpect's fdspawn needs a file descriptor, which RFC 2217 and socket:// links do not have;
``LinkSpawn`` is a small SpawnBase over the link's read/write instead, for every URL type.
"""
from __future__ import annotations

import re
import time
from typing import Sequence, Union

import pexpect
from pexpect.spawnbase import SpawnBase

from hil.errors import BoardRebooted, HilError, ReplProtocolError
from hil.link import Link, escape

Pattern = Union[bytes, str, "re.Pattern[bytes]"]
TAIL_SHOWN = 200


class LinkSpawn(SpawnBase):
    """pexpect spawn over a Link; starts with bytes the console already had buffered."""

    def __init__(self, link: Link, initial: bytes = b"", timeout: float = 30.0) -> None:
        super().__init__(timeout=timeout, maxread=4096, encoding=None)
        self.link = link
        self._initial = initial
        self.delayafterread = None
        self.delaybeforesend = None
        self.closed = False
        self.name = f"<LinkSpawn {link.url}>"

    def read_nonblocking(self, size: int = 1, timeout: float | None = -1) -> bytes:
        if self._initial:
            data, self._initial = self._initial, b""
            return data
        if timeout == -1:
            timeout = self.timeout
        if timeout is None:
            timeout = 3600.0   # pexpect's "forever"; we still never block unbounded
        data = self.link.read(size, max(0.0, timeout))
        if not data:
            raise pexpect.TIMEOUT(f"no data from {self.link.url} within {timeout:.2f} s")
        return data

    def send(self, s: bytes | str) -> int:
        data = self._coerce_send_string(s)
        self.link.write(data)
        return len(data)

    def isalive(self) -> bool:
        return self.link.is_open


class Console:
    """Byte console over a link, with one shared read buffer."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self._pending = b""
        self.before = b""
        self.after = b""
        self.match: re.Match[bytes] | None = None

    # -- errors ------------------------------------------------------------------------------
    def error(self, cls: type[HilError], what: str, timeout: float | None = None) -> HilError:
        """One-line error: what was awaited, the last bytes received and the serial log path."""
        waited = f" within {timeout:.1f} s" if timeout is not None else ""
        tail = escape(self.link.tail(TAIL_SHOWN))
        log = self.link.log_path or "(no serial log)"
        return cls(f"{what}{waited} on {self.link.url}; last bytes received: \"{tail}\"; serial log: {log}")

    # -- writing -----------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        self.link.write(data)

    # -- reading -----------------------------------------------------------------------------
    def unread(self, data: bytes) -> None:
        """Put bytes back in front of the buffer."""
        self._pending = data + self._pending

    def read(self, n: int = 4096, timeout: float = 1.0) -> bytes:
        """Up to n bytes (buffered ones first); b"" on timeout."""
        if self._pending:
            data, self._pending = self._pending[:n], self._pending[n:]
            return data
        return self.link.read(n, timeout)

    def read_exact(self, n: int, timeout: float, *, what: str = "",
                   error: type[HilError] = ReplProtocolError) -> bytes:
        deadline = time.monotonic() + timeout
        parts: list[bytes] = []
        got = 0
        while got < n:
            chunk = self.read(n - got, max(0.0, deadline - time.monotonic()))
            if not chunk:
                self.unread(b"".join(parts))
                raise self.error(error, what or f"waiting for {n} bytes (got {got})", timeout)
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    def read_until(self, marker: bytes, timeout: float, *, what: str = "",
                   error: type[HilError] | None = ReplProtocolError,
                   abort: Sequence[bytes] = ()) -> bytes:
        """Everything up to and including ``marker``.

        On timeout raises ``error`` (naming ``what``); with error=None returns b"" and leaves
        the bytes received so far in the buffer. When one of the ``abort`` markers shows up
        first (the board's boot log: it rebooted), BoardRebooted at once, with every byte
        left in the buffer for whoever waits for the boot next.
        """
        deadline = time.monotonic() + timeout
        buf = self._pending
        self._pending = b""
        start = 0
        longest = max([len(marker), *map(len, abort)])
        while True:
            i = buf.find(marker, start)
            hit = [m for m in abort if buf.find(m, start) >= 0 and (i < 0 or buf.find(m, start) < i)]
            if hit:
                self._pending = buf
                raise self.error(BoardRebooted, f"{what or 'waiting for the board'}: the board "
                                 f"rebooted (saw {escape(hit[0])!r})")
            if i >= 0:
                end = i + len(marker)
                self._pending = buf[end:]
                return buf[:end]
            start = max(0, len(buf) - longest + 1)
            left = deadline - time.monotonic()
            chunk = self.link.read(65536, max(0.0, left)) if left > 0 else b""
            if not chunk:
                self._pending = buf
                if error is None:
                    return b""
                raise self.error(error, what or f"waiting for {escape(marker)!r}", timeout)
            buf += chunk

    def drain(self, quiet: float = 0.05, limit: float = 1.0) -> bytes:
        """Discard (and return) the buffer plus whatever arrives until the line goes quiet."""
        data, self._pending = self._pending, b""
        return data + self.link.drain(quiet, limit)

    def expect(self, pattern: Pattern | Sequence[Pattern], timeout: float, *,
               what: str = "", error: type[HilError] = ReplProtocolError) -> int:
        """pexpect-style expect: index of the pattern that matched; sets before/after/match.

        Patterns are regexes (bytes or str, or compiled). On timeout raises ``error`` with the
        last bytes received and the log path.
        """
        spawn = LinkSpawn(self.link, self._pending, timeout)
        self._pending = b""
        patterns = list(pattern) if isinstance(pattern, (list, tuple)) else [pattern]
        try:
            index = spawn.expect(patterns, timeout=timeout)
        except pexpect.TIMEOUT:
            self._pending = spawn.buffer
            shown = what or "waiting for " + " or ".join(
                repr(p.pattern if hasattr(p, "pattern") else p) for p in patterns)
            raise self.error(error, shown, timeout) from None
        self._pending = spawn.buffer
        self.before, self.after, self.match = spawn.before, spawn.after, spawn.match
        return index
