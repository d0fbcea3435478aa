"""File put/get over the raw REPL, verified by sha256 on the board (uhashlib) and on the host.

A put writes ``<name>.part``, compares hashes, then renames: an interrupted or corrupted
transfer never leaves a file under the final name. A mismatch is retried a bounded number of
times, then TransferError. So is a try that failed because the line garbled our own helper
code (the board answers SyntaxError/NameError... to code that is correct as sent) or because
the board rebooted under it (a brownout or watchdog mid-upload: ReplProtocolError).

Fast path (the firmware has ``sys.stdin.buffer``/``sys.stdout.buffer`` and
``micropython.kbd_intr``): a small receiver on the board reads raw bytes from stdin with Ctrl-C
disabled (restored in ``finally``), in windows of W bytes. It acknowledges each window with one
byte as soon as it has read it, then hashes it and writes the file in 4 KiB chunks. The host
keeps at most CREDIT windows unacknowledged, so the board's receive buffer never holds more than
CREDIT*W bytes, and the acknowledgements travel on the other wire, so the line never idles
while the board writes. A get streams raw bytes the other way (the host needs no flow control).

Fallback (no stdin.buffer): base64 chunks through ordinary execs, hash by reading back. Big
transfers may run at the rig's fast_baud (hil.device.micropython.baud). Every try goes through the
one retry policy (hil.retry). Subscribed to the board's events: after a reboot the board's UART
is back at the slow baud; after a reconnection or a new build the streaming probe runs again.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import time
from pathlib import Path
from typing import Any, Callable

from hil.board.state import RebootCause
from hil.device.micropython.code import device as device_code
from hil.device.micropython.baud import BOOT_RX_BUFFER, FastBaud
from hil.device.micropython.code import transfer as board_code
from hil.device.micropython.repl import CTRL_D, Repl, parse_traceback
from hil.errors import HilError, ReplError, ReplProtocolError, TransferError
from hil.retry import Retry

Progress = Callable[[int, int], None]

ROOTS = ("/sd/", "/flash/")
RETRIES = 3
ACK = b"\x06"
CREDIT = 2                  # windows in flight
ACK_GRACE_S = 5.0           # beyond wire time: how long the board may take to acknowledge a window
SLOW_WINDOW = BOOT_RX_BUFFER // CREDIT
FAST_RX_BUFFER = 16384      # read_buf_len we ask for when switching to fast_baud
FAST_WINDOW = 4096
FAST_THRESHOLD = 64 * 1024  # switch baud only for files at least this big
B64_CHUNK = 3 * 256         # raw bytes per base64 line in the fallback
B64_PER_EXEC = 8            # base64 lines per exec in the fallback put
WRITE_CHUNK = 4096

_HASH_RE = re.compile(rb"([0-9a-f]{64})")
# Our helper programs are correct as sent: these from the board mean the line garbled them.
GARBLED_CODE = ("SyntaxError", "IndentationError", "NameError", "UnboundLocalError", "UnicodeError")


class Mismatch(TransferError):
    """The copy's sha256 differs from the original's (retried)."""


def _garbled(exc: ReplError) -> TransferError | None:
    """A TransferError to retry when the board's exception says our code arrived damaged."""
    if exc.exc_type in GARBLED_CODE:
        return TransferError(f"the board got damaged code ({exc}): bytes corrupted or lost on the line")
    return None


def _ours(action):
    """Run ``action``; a device exception that says our code arrived damaged becomes retriable."""
    try:
        return action()
    except ReplError as exc:
        raise _garbled(exc) or exc from None


def check_remote(path: str) -> str:
    if not any(path.startswith(root) for root in ROOTS) or path.endswith("/") or "/../" in path:
        raise TransferError(f"remote path {path!r}: must name a file under /sd/ or /flash/")
    return path


def _digest_line(out: bytes, what: str) -> str:
    m = _HASH_RE.search(out)
    if m is None:
        raise ReplProtocolError(f"{what}: the board printed no sha256 ({out[-120:]!r})")
    return m.group(1).decode()


class Transfer:
    """put/get for one board connection."""

    def __init__(self, repl: Repl, fast_baud: int = 0, retries: int = RETRIES,
                 fast_threshold: int = FAST_THRESHOLD) -> None:
        self.repl = repl
        self.fast_baud = fast_baud
        self.retry = Retry(retries)
        self.fast_threshold = fast_threshold
        self.streaming: bool | None = None   # firmware has stdin.buffer + kbd_intr (probed once)
        self.window = SLOW_WINDOW
        self.slow_baud = repl.console.link.baud
        self.last_baud = 0                   # baud the last transfer ran at
        self.ack_grace = ACK_GRACE_S
        repl.events.subscribe(self)

    @property
    def retries(self) -> int:
        return self.retry.attempts

    # -- board events ------------------------------------------------------------------------
    def rebooted(self, cause: RebootCause) -> None:
        """The board's REPL UART restarts at the slow baud; a new build is probed again."""
        self.window = SLOW_WINDOW
        if self.link.is_open and self.link.baud != self.slow_baud:
            self.note(f"board rebooted: back to {self.slow_baud} baud")
            self.link.set_baud(self.slow_baud)
        if not cause.same_firmware:
            self.streaming = None

    def reconnected(self) -> None:
        self.streaming = None

    @property
    def console(self):
        return self.repl.console

    @property
    def link(self):
        return self.repl.console.link

    def note(self, text: str) -> None:
        self.link.note(f"transfer: {text}")

    def _finish(self, timeout: float):
        """The running program's output; its exception, if it raised, as ReplError."""
        result = self.repl.exec_finish(timeout)
        if result.stderr:
            raise parse_traceback(result.stderr)
        return result

    def probe(self) -> bool:
        if self.streaming is None:
            out = self.retry.run(
                lambda _: _ours(lambda: self.repl.exec(board_code.PROBE)),
                what="transfer probe", retriable=(TransferError, ReplProtocolError), note=self.note,
                between=lambda exc: self.repl.forget(),
                exhausted=lambda exc: exc if isinstance(exc, ReplProtocolError) else TransferError(
                    f"transfer probe on {self.link.url}: no clean answer after {self.retries} tries ({exc})"))
            self.streaming = out.strip() == b"True"
            self.note("raw stdin streaming " + ("available" if self.streaming else
                                                "not available: base64 fallback"))
        return self.streaming

    # -- put -----------------------------------------------------------------------------------
    def put(self, data: bytes | Path | str, remote: str, progress: Progress | None = None) -> str:
        """Write ``data`` (bytes or a local file) to ``remote``; returns its sha256 hex."""
        check_remote(remote)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            path = Path(data)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise TransferError(f"put {path} -> {remote}: cannot read {path}: {exc.strerror}") from None
        data = bytes(data)
        want = hashlib.sha256(data).hexdigest()
        part = remote + ".part"
        streaming = self.probe()

        def attempt(_: int) -> str:
            got = _ours(lambda: self._put_stream(data, part, progress) if streaming
                        else self._put_b64(data, part, progress))
            if got != want:
                raise Mismatch(f"sha256 mismatch (host {want[:16]}, board {got[:16]})")
            return got

        with self._maybe_fast(len(data)):
            self._retried(f"put {remote}", attempt, lambda exc: TransferError(
                f"put {remote} on {self.link.url}: no verified copy after {self.retries} tries "
                f"(serial log: {self.link.log_path})"), after=lambda: self._remove_quietly(part))
            self._rename(part, remote)
        return want

    def _retried(self, what: str, attempt: Callable[[int], Any], exhausted: Callable[[BaseException], BaseException],
                 after: Callable[[], None] | None = None) -> Any:
        """``attempt`` under the retry policy: a failed try re-synchronises the REPL (unless only
        the hashes differed) and runs ``after``; a board that answers nothing is not retried."""
        def between(exc: BaseException) -> None:
            if not isinstance(exc, Mismatch):
                self.repl.forget()
            if after is not None:
                after()
        return self.retry.run(attempt, what=what, retriable=(ReplProtocolError, TransferError), between=between,
                              hopeless=lambda n, exc: self._hopeless(what, n, exc), exhausted=exhausted,
                              note=self.note)

    def _hopeless(self, what: str, attempt: int, exc: BaseException) -> TransferError | None:
        """No retry helps a board that answers nothing at all (hung, gone, in reset)."""
        if isinstance(exc, Mismatch) or not self.repl.silent:
            return None
        return TransferError(f"{what} on {self.link.url}: the board stopped answering on try {attempt} ({exc})")

    def _rename(self, part: str, remote: str) -> None:
        """The verified .part under its final name (the rename alone is retried if garbled)."""
        self.retry.run(lambda _: _ours(lambda: self.repl.exec(board_code.RENAME.format(part=part, final=remote))),
                       what=f"rename {part} -> {remote}", retriable=(TransferError, ReplProtocolError),
                       between=lambda exc: self.repl.forget(), note=self.note,
                       exhausted=lambda exc: TransferError(
                           f"put {remote} on {self.link.url}: verified as {part} but could not rename it "
                           f"after {self.retries} tries ({exc}); serial log: {self.link.log_path}"))

    def _remove_quietly(self, path: str) -> None:
        if self.repl.silent:
            return
        try:
            self.repl.exec(board_code.REMOVE_QUIETLY.format(path=path))
        except HilError as exc:
            self.note(f"could not remove {path}: {exc}")

    def _put_stream(self, data: bytes, part: str, progress: Progress | None) -> str:
        console = self.console
        size, win = len(data), self.window
        self.repl.exec_start(board_code.RECEIVER.format(chunk=WRITE_CHUNK, path=part, size=size, win=win))
        # the receiver says it is ready (Ctrl-C off) with one ACK; an exception ends stdout instead
        first = console.read(1, 5.0)
        if first != ACK:
            console.unread(first)
            result = self._finish(5.0)
            raise ReplProtocolError(f"receiver for {part} did not start ({result.stdout[-80:]!r})")
        wire = win * 10 / max(1, self.link.baud)
        ack_timeout = self.ack_grace + (CREDIT + 1) * wire
        sent = acked = 0
        windows = (size + win - 1) // win
        while acked < windows:
            while sent < windows and sent - acked < CREDIT:
                console.write(data[sent * win:(sent + 1) * win])
                sent += 1
            got = console.read(sent - acked, ack_timeout)
            if not got:
                self._unstick(size - acked * win)
                raise TransferError(f"put {part}: no acknowledgement for window {acked + 1} of {windows} "
                                    f"within {ack_timeout:.1f} s")
            ok = len(got) - len(got.lstrip(ACK))
            if ok < len(got):
                console.unread(got[ok:])
                if ok == 0:
                    result = self._finish(5.0)
                    raise ReplProtocolError(f"put {part}: unexpected bytes from the receiver "
                                            f"{result.stdout[:80]!r}")
            acked += ok
            if progress:
                progress(min(size, acked * win), size)
        result = self._finish(10.0 + size / 100_000)
        digests = [m.decode() for m in _HASH_RE.findall(result.stdout)]
        if len(digests) != 2:
            raise ReplProtocolError(f"put {part}: expected two sha256 lines, got {result.stdout[-160:]!r}")
        wire, stored = digests
        if wire != stored:
            self.note(f"put {part}: the bytes read back differ from the bytes received "
                      f"({stored[:16]} != {wire[:16]}): storage write error")
        return stored

    def _unstick(self, need: int) -> None:
        """Bytes were lost: the receiver waits for more with Ctrl-C off. Feed it zeros until it
        ends (its hash will not match and the put is retried); extra zeros land in the raw REPL
        line buffer, which the next Ctrl-C clears."""
        console = self.console
        self.note(f"receiver stalled; feeding up to {need + CREDIT * self.window} filler bytes")
        budget = need + CREDIT * self.window
        step = 64
        before, fed = self.link.bytes_in, 0
        while budget > 0:
            console.write(b"\0" * step)
            budget -= step
            fed += step
            if CTRL_D in console.read_until(CTRL_D, 0.05, error=None):
                break
            if fed >= 2 * self.window + step and self.link.bytes_in == before:
                # a live receiver acknowledges every window it reads: this one is not listening
                self.note(f"no acknowledgement for {fed} filler bytes: the board is not listening")
                break
        self.repl.forget()

    def _put_b64(self, data: bytes, part: str, progress: Progress | None) -> str:
        self.repl.exec(board_code.b64_open(part))
        try:
            step = B64_CHUNK * B64_PER_EXEC
            for start in range(0, len(data), step):
                block = data[start:start + step]
                lines = [base64.b64encode(block[i:i + B64_CHUNK]).decode() for i in range(0, len(block), B64_CHUNK)]
                self.repl.exec(board_code.b64_write(lines), 30.0)
                if progress:
                    progress(min(len(data), start + step), len(data))
        finally:
            self.repl.exec(board_code.B64_CLOSE)
        return self.remote_sha256(part)

    def remote_sha256(self, remote: str) -> str:
        """sha256 of a file on the board, read back from its storage."""
        out = self.repl.exec(board_code.HASH_FILE.format(chunk=WRITE_CHUNK, path=remote), 120.0)
        return _digest_line(out, f"sha256 of {remote}")

    # -- get -----------------------------------------------------------------------------------
    def get(self, remote: str, local: Path | str | None = None, progress: Progress | None = None) -> bytes:
        """Read ``remote``; verified against the board's sha256. Saved to ``local`` if given
        (through ``local.part``, renamed when complete)."""
        check_remote(remote)
        streaming = self.probe()
        # worth a baud switch? ask the size first
        size = int(self.repl.exec(device_code.size(remote)).strip() or 0) if self.fast_baud and streaming else 0
        with self._maybe_fast(size):
            return self._get_tries(remote, local, progress, streaming)

    def _get_tries(self, remote: str, local: Path | str | None, progress: Progress | None, streaming: bool) -> bytes:
        def attempt(_: int) -> bytes:
            data, theirs = _ours(lambda: self._get_stream(remote, progress) if streaming
                                 else self._get_b64(remote, progress))
            ours = hashlib.sha256(data).hexdigest()
            if ours != theirs:
                raise Mismatch(f"sha256 mismatch (host {ours[:16]}, board {theirs[:16]})")
            return data

        data = self._retried(f"get {remote}", attempt, lambda exc: TransferError(
            f"get {remote} on {self.link.url}: no verified copy after {self.retries} tries (last error: {exc}) "
            f"(serial log: {self.link.log_path})"))
        if local is not None:       # through local.part: never a half-written file under its name
            tmp = Path(local).with_name(Path(local).name + ".part")
            tmp.write_bytes(data)
            os.replace(tmp, local)
        return data

    def _start_reading(self, code: str, remote: str) -> int:
        """Run a sender; its first stdout line is the file size (or it raised)."""
        console = self.console
        self.repl.exec_start(code)
        head = console.read_until(b"\r\n", 10.0, error=None)
        if not head or CTRL_D in head:
            console.unread(head)
            result = self._finish(5.0)
            raise ReplProtocolError(f"get {remote}: no size line ({result.stdout[:80]!r})")
        try:
            return int(head.strip())
        except ValueError:
            raise ReplProtocolError(f"get {remote}: size line {head[:40]!r} is not a number") from None

    def _get_stream(self, remote: str, progress: Progress | None) -> tuple[bytes, str]:
        size = self._start_reading(board_code.SENDER.format(chunk=WRITE_CHUNK, path=remote), remote)
        console = self.console
        parts: list[bytes] = []
        got = 0
        per_byte = 10 / max(1, self.link.baud)
        deadline = time.monotonic() + 10.0 + size * per_byte * 2
        while got < size:
            chunk = console.read(min(65536, size - got), max(0.0, deadline - time.monotonic()))
            if not chunk:
                raise TransferError(f"get {remote}: stream stopped after {got} of {size} bytes")
            parts.append(chunk)
            got += len(chunk)
            if progress:
                progress(got, size)
        result = self._finish(10.0)
        return b"".join(parts), _digest_line(result.stdout, f"get {remote}")

    def _get_b64(self, remote: str, progress: Progress | None) -> tuple[bytes, str]:
        size = self._start_reading(board_code.B64_SENDER.format(chunk=B64_CHUNK, path=remote), remote)
        per_byte = 10 / max(1, self.link.baud)
        result = self._finish(10.0 + size * per_byte * 3)
        parts, digest = [], ""
        for line in result.stdout.split(b"\r\n"):
            if line.startswith(b"="):
                digest = line[1:].decode()
            elif line:
                try:
                    parts.append(base64.b64decode(line, validate=True))
                except binascii.Error:
                    raise TransferError(f"get {remote}: garbled base64 line {line[:40]!r}") from None
        data = b"".join(parts)
        if progress:
            progress(len(data), size)
        if len(data) != size or not digest:
            raise TransferError(f"get {remote}: got {len(data)} of {size} bytes")
        return data, digest

    # -- fast baud ---------------------------------------------------------------------------------
    def _maybe_fast(self, size: int) -> FastBaud:
        """The REPL UART at fast_baud for one big streamed transfer, then back."""
        active = bool(self.fast_baud and size >= self.fast_threshold and self.streaming)
        return FastBaud(self.repl, self.fast_baud if active else 0, FAST_RX_BUFFER, BOOT_RX_BUFFER, self._windows)

    def _windows(self, baud: int, running: bool) -> None:
        if running:
            self.last_baud = baud
        self.window = FAST_WINDOW if running and baud != self.slow_baud else SLOW_WINDOW
