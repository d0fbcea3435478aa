"""The serial link: any pyserial URL, every byte teed with a timestamp into the current serial log.

A link is opened once per session and outlives the tests; the plugin swaps ``link.log`` so each
test gets its own log file. Reads never block without a timeout and return what is there (up to
n bytes) as soon as anything arrives, so higher layers can search for markers without polling.

Device paths are read with select()+os.read on the descriptor and ``socket://`` URLs on the
socket itself: pyserial's own read(n) waits for all n bytes, and changing its timeout per call
renegotiates the whole port over RFC 2217 (about 50 ms a time).

A link that failed mid-read or mid-write (the adapter unplugged, the RFC 2217 server gone) is
marked ``lost``; ``reopen()`` gets it back once the port exists again.

Secrets never reach a log or an error message: ``Link.url`` is the port URL with any password
(``rfc2217://user:PASSWORD@host:port``) and secret-looking query values (``?token=...``) masked,
and every serial-log line goes through ``redact()``, which also masks the values of environment
variables named like secrets (``*TOKEN*``, ``*PASSWORD*``, ``*SECRET*``, ``*API_KEY*``...).
"""
from __future__ import annotations

import errno
import os
import re
import select
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import serial

from hil.errors import LinkError

POLL_S = 0.02          # pyserial read timeout for URL types we cannot select() on
TAIL_BYTES = 4096      # received bytes kept for error messages
_ENOTTY = (errno.ENOTTY, errno.EINVAL)

_ESCAPES = [chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in range(256)]
_ESCAPES[0x5C] = "\\\\"
_ESCAPES[0x0D] = "\\r"
_ESCAPES[0x0A] = "\\n"
_ESCAPES[0x09] = "\\t"


MASK = "***"
SECRET_NAME = re.compile(r"TOKEN|PASSW(OR)?D|SECRET|API_?KEY|PRIVATE_?KEY|CREDENTIAL", re.I)
SECRET_QUERY = re.compile(r"token|pass(word|wd)?|secret|key|auth|credential|sig(nature)?", re.I)
MIN_SECRET_LEN = 6          # shorter env values ("1", "yes", a port) would mask half the log
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)(?P<pw>[^@\s/]+)@")
_QUERY_SECRET = re.compile(r"(?P<head>[?&][^=&\s#]*(?:%s)[^=&\s#]*=)(?P<value>[^&\s#]+)"
                           % SECRET_QUERY.pattern, re.I)


def redact_url(url: str) -> str:
    """A port URL fit for logs: password and secret query values masked, the rest as written."""
    return redact(url)


def _env_secrets() -> list[str]:
    values = {v for k, v in os.environ.items() if SECRET_NAME.search(k) and len(v) >= MIN_SECRET_LEN}
    return sorted(values, key=len, reverse=True)   # longest first: no half-masked overlaps


def redact(text: str, secrets: list[str] | None = None) -> str:
    """``text`` with URL passwords, secret query values and secret env values masked."""
    for value in (_env_secrets() if secrets is None else secrets):
        if value in text:
            text = text.replace(value, MASK)
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK + "@", text)
    if "=" in text:
        text = _QUERY_SECRET.sub(lambda m: m.group("head") + MASK, text)
    return text


def escape(data: bytes) -> str:
    """Bytes as one line of text: printable ASCII as is, everything else backslash-escaped."""
    return "".join(map(_ESCAPES.__getitem__, data))


class SerialLog:
    """A serial log file: one record per line, ``HH:MM:SS.ffffff DIR text``.

    DIR is ``<`` for bytes from the board, ``>`` for bytes to it and ``#`` for notes (resets,
    baud and modem-line changes). Received bytes are one record per line, whatever the reads
    that brought them: split after each newline and joined across reads, stamped when the
    line's first byte came. A line still open when something else is logged (bytes sent, a
    note), or when the log closes, ends there. Written and flushed as bytes come: a crash keeps
    what was seen, and ``tail -f`` shows a prompt that has no newline yet.
    """

    def __init__(self, path: Path | None, title: str = "") -> None:
        self.path = Path(path) if path is not None else None
        self._file: TextIO | None = None
        self._rx_open = False            # a received line is on the last line of the file, not ended
        self._secrets = _env_secrets()   # read once: the environment of a run does not change
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="ascii", errors="backslashreplace")
            self._file.write(f"# serial log {title} started {datetime.now().isoformat(timespec='seconds')}\n")
            self._file.flush()

    def _end_rx(self) -> None:
        if self._rx_open and self._file is not None:
            self._file.write("\n")
        self._rx_open = False

    def _write(self, direction: str, text: str) -> None:
        if self._file is None:
            return
        self._end_rx()
        stamp = datetime.now().strftime("%H:%M:%S.%f")
        self._file.write(f"{stamp} {direction} {redact(text, self._secrets)}\n")
        self._file.flush()

    def rx(self, data: bytes) -> None:
        if self._file is None or not data:
            return
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            end = len(data) if end < 0 else end + 1
            text = redact(escape(data[start:end]), self._secrets)
            if not self._rx_open:
                text = f"{datetime.now().strftime('%H:%M:%S.%f')} < {text}"
            self._rx_open = data[end - 1] != 0x0A
            self._file.write(text if self._rx_open else text + "\n")
            start = end
        self._file.flush()

    def tx(self, data: bytes) -> None:
        if data:
            self._write(">", escape(data))

    def note(self, text: str) -> None:
        self._write("#", text)

    def close(self) -> None:
        if self._file is not None:
            self._end_rx()
            self._file.close()
            self._file = None

    def __repr__(self) -> str:
        return f"SerialLog({self.path})"


NULL_LOG = SerialLog(None)


def open_reason(exc: BaseException) -> str:
    """Why a port or file could not be opened, in words (pyserial's nested errno text dropped)."""
    code = getattr(exc, "errno", None)
    if code == errno.ENOENT:
        return "no such device (is the board plugged in? see ls /dev/serial/by-id/)"
    if code == errno.EACCES:
        return "permission denied (is your user in the dialout group?)"
    if code == errno.EBUSY:
        return "device busy (another program has it open)"
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


class Link:
    """An open serial port: a device path or any pyserial URL (hil.ports)."""

    def __init__(self, url: str, baud: int = 115200, log: SerialLog | None = None,
                 name: str = "") -> None:
        self._open_url = url
        self.url = redact_url(url)        # what messages and logs show
        self.name = name or self.url
        self.lost = False
        self._log = log or NULL_LOG
        self._tail: deque[bytes] = deque()
        self._tail_len = 0
        self.lines_wired: bool | None = None   # None until a DTR/RTS change was tried
        self.bytes_in = 0
        self.bytes_out = 0
        self.serial: Any = None
        self._fd: int | None = None
        self._sock: Any = None
        self._baud = baud
        self._open()

    # -- opening -----------------------------------------------------------------------------
    def _open(self) -> None:
        try:
            ser = serial.serial_for_url(self._open_url, baudrate=self._baud, timeout=POLL_S)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkError(f"cannot open serial port {self.url}: {redact(open_reason(exc))}") from None
        self.serial = ser
        self.lost = False
        self._fd = None
        self._sock = None
        if type(ser).read is serial.Serial.read and getattr(ser, "fd", None) is not None:
            # a device path read straight from its descriptor; not a class that does its own
            # reading (spy:// dumps every byte it reads, alt:// may poll() instead of select())
            self._fd = ser.fd
        elif getattr(ser, "_socket", None) is not None and type(ser).__module__.endswith("protocol_socket"):
            self._sock = ser._socket
        self._log.note(f"opened {self.url} at {self._baud} baud")

    def reopen(self, timeout: float, url: str | None = None) -> None:
        """Close and open again, retrying until ``timeout`` (a USB port vanishes while powered off);
        at ``url`` when the port moved (an emulator restarted on another socket)."""
        self.close()
        if url and url != self._open_url:
            self._open_url, self.url = url, redact_url(url)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._open()
                return
            except LinkError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def close(self) -> None:
        if self.serial is not None:
            try:
                self.serial.close()
            except (serial.SerialException, OSError):
                pass
            self._log.note(f"closed {self.url}")
        self.serial = None
        self._fd = None
        self._sock = None

    @property
    def is_open(self) -> bool:
        return self.serial is not None

    # -- logging -----------------------------------------------------------------------------
    @property
    def log(self) -> SerialLog:
        return self._log

    @log.setter
    def log(self, value: SerialLog | None) -> None:
        self._log = value or NULL_LOG

    @property
    def log_path(self) -> Path | None:
        return self._log.path

    def note(self, text: str) -> None:
        self._log.note(text)

    def tail(self, n: int = 200) -> bytes:
        """The last n bytes received (for error messages)."""
        return b"".join(self._tail)[-n:]

    def _keep(self, data: bytes) -> None:
        self._tail.append(data)
        self._tail_len += len(data)
        while self._tail_len - len(self._tail[0]) >= TAIL_BYTES:
            self._tail_len -= len(self._tail.popleft())

    # -- bytes -------------------------------------------------------------------------------
    def _lost(self, exc: BaseException | str) -> LinkError:
        self.lost = True
        return LinkError(f"serial port {self.url}: link lost: {redact(str(exc))}")

    def _need_open(self) -> None:
        if self.serial is None:
            raise LinkError(f"serial port {self.url}: not open")

    def read(self, n: int = 4096, timeout: float = 1.0) -> bytes:
        """Up to n bytes, returned as soon as at least one arrived; b"" after ``timeout`` seconds."""
        self._need_open()
        deadline = time.monotonic() + max(0.0, timeout)
        try:
            data = self._read_some(n, deadline)
        except (serial.SerialException, OSError) as exc:
            raise self._lost(exc) from None
        if data:
            self.bytes_in += len(data)
            self._keep(data)
            self._log.rx(data)
        return data

    def _read_some(self, n: int, deadline: float) -> bytes:
        if self._fd is not None:
            while True:
                left = max(0.0, deadline - time.monotonic())
                ready, _, _ = select.select([self._fd], [], [], left)
                if ready:
                    try:
                        data = os.read(self._fd, n)
                    except BlockingIOError:
                        data = None
                    if data == b"":
                        raise self._lost("end of file (the other side closed)")
                    if data:
                        return data
                if time.monotonic() >= deadline:
                    return b""
        if self._sock is not None:
            while True:
                left = max(0.0, deadline - time.monotonic())
                ready, _, _ = select.select([self._sock], [], [], left)
                if ready:
                    data = self._sock.recv(n)
                    if not data:
                        raise self._lost("connection closed by the other side")
                    return data
                if time.monotonic() >= deadline:
                    return b""
        ser = self.serial
        while True:
            waiting = ser.in_waiting
            data = ser.read(max(1, min(n, waiting)))
            if data:
                more = ser.in_waiting if len(data) < n else 0
                if more:
                    data += ser.read(min(more, n - len(data)))
                return data
            if time.monotonic() >= deadline:
                return b""

    def write(self, data: bytes) -> None:
        self._need_open()
        if not data:
            return
        self._log.tx(data)
        try:
            self.serial.write(data)
        except (serial.SerialException, OSError) as exc:
            raise self._lost(exc) from None
        self.bytes_out += len(data)

    def drain(self, quiet: float = 0.05, limit: float = 1.0) -> bytes:
        """Read and return whatever arrives until the line is quiet for ``quiet`` s (at most ``limit`` s)."""
        deadline = time.monotonic() + limit
        parts = []
        while time.monotonic() < deadline:
            chunk = self.read(4096, min(quiet, max(0.0, deadline - time.monotonic())))
            if not chunk:
                break
            parts.append(chunk)
        return b"".join(parts)

    # -- line settings -----------------------------------------------------------------------
    @property
    def baud(self) -> int:
        return self._baud

    def set_baud(self, baud: int) -> None:
        self._need_open()
        try:
            self.serial.baudrate = baud
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkError(f"serial port {self.url}: cannot set {baud} baud: {exc}") from None
        self._baud = baud
        self._log.note(f"baud {baud}")

    def set_line(self, line: str, value: bool) -> bool:
        """Set DTR or RTS (True = asserted). False when the port has no modem lines (a pty)."""
        if line not in ("dtr", "rts"):
            raise ValueError(f"unknown modem line {line!r}")
        self._need_open()
        try:
            setattr(self.serial, line, value)
        except OSError as exc:
            if exc.errno in _ENOTTY:
                if self.lines_wired is not False:
                    self._log.note(f"DTR/RTS not wired on {self.url} "
                                   f"({os.strerror(exc.errno)}): modem-line changes are ignored")
                self.lines_wired = False
                return False
            raise LinkError(f"serial port {self.url}: cannot set {line.upper()}: {exc}") from None
        except serial.SerialException as exc:
            raise LinkError(f"serial port {self.url}: cannot set {line.upper()}: {exc}") from None
        self.lines_wired = True
        self._log.note(f"{line.upper()}={'1' if value else '0'}")
        return True

    def __enter__(self) -> "Link":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Link({self.url!r}, {self._baud})"
