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

Fallback (no stdin.buffer): base64 chunks through ordinary execs, hash by reading back.

Big transfers may switch the REPL UART to the rig's fast_baud (``UART.repl_uart().init(...)``)
and back; a failed switch falls back to the slow baud with a note in the serial log.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import time
from pathlib import Path
from typing import Callable

from hil.errors import HilError, ReplError, ReplProtocolError, TransferError
from hil import transfer_code as board_code
from hil.repl import CTRL_D, Repl, parse_traceback

Progress = Callable[[int, int], None]

ROOTS = ("/sd/", "/flash/")
RETRIES = 3
ACK = b"\x06"
CREDIT = 2                  # windows in flight
ACK_GRACE_S = 5.0           # beyond wire time: how long the board may take to acknowledge a window
# UNCONFIRMED: MaixPy's REPL UART receive ring at boot. 512 bytes is a conservative guess; with
# CREDIT windows of SLOW_WINDOW bytes we never put more than that in flight.
BOOT_RX_BUFFER = 512
SLOW_WINDOW = BOOT_RX_BUFFER // CREDIT
FAST_RX_BUFFER = 16384      # read_buf_len we ask for when switching to fast_baud
FAST_WINDOW = 4096
FAST_THRESHOLD = 64 * 1024  # switch baud only for files at least this big
B64_CHUNK = 3 * 256         # raw bytes per base64 line in the fallback
B64_PER_EXEC = 8            # base64 lines per exec in the fallback put
WRITE_CHUNK = 4096

_HASH_RE = re.compile(rb"([0-9a-f]{64})")
# Our helper programs are correct as sent: these from the board mean the line garbled them.
GARBLED_CODE = ("SyntaxError", "IndentationError", "NameError", "UnicodeError")


def _garbled(exc: ReplError) -> TransferError | None:
    """A TransferError to retry when the board's exception says our code arrived damaged."""
    if exc.exc_type in GARBLED_CODE:
        return TransferError(f"the board got damaged code ({exc}): bytes corrupted or lost on the line")
    return None

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
        self.retries = retries
        self.fast_threshold = fast_threshold
        self.streaming: bool | None = None   # firmware has stdin.buffer + kbd_intr (probed once)
        self.window = SLOW_WINDOW
        self.last_baud = 0                   # baud the last transfer ran at
        self.ack_grace = ACK_GRACE_S

    @property
    def console(self):
        return self.repl.console

    @property
    def link(self):
        return self.repl.console.link

    def note(self, text: str) -> None:
        self.link.note(f"transfer: {text}")

    def probe(self) -> bool:
        if self.streaming is None:
            for attempt in range(1, self.retries + 1):
                try:
                    out = self.repl.exec(board_code.PROBE)
                    break
                except ReplError as exc:
                    error = _garbled(exc)
                    if error is None:
                        raise
                    if attempt == self.retries:
                        raise TransferError(f"transfer probe on {self.link.url}: no clean answer after "
                                            f"{attempt} tries ({error})") from None
                except ReplProtocolError:
                    if attempt == self.retries:
                        raise
                    self.repl.forget()
                self.note(f"probe: try {attempt} failed; again")
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
        with self._maybe_fast(len(data)):
            for attempt in range(1, self.retries + 1):
                try:
                    try:
                        got = (self._put_stream(data, part, progress) if streaming
                               else self._put_b64(data, part, progress))
                    except ReplError as exc:
                        raise _garbled(exc) or exc from None
                except (ReplProtocolError, TransferError) as exc:
                    self.note(f"put {remote}: try {attempt} failed: {exc}")
                    self.repl.forget()
                    if self.repl.silent:
                        raise self._not_answering(f"put {remote}", attempt, exc) from None
                    got = None
                if got == want:
                    self._rename(part, remote)
                    return want
                if got is not None:
                    self.note(f"put {remote}: sha256 mismatch on try {attempt} (host {want[:16]}, board {got[:16]})")
                self._remove_quietly(part)
        raise TransferError(f"put {remote} on {self.link.url}: no verified copy after {self.retries} tries "
                            f"(serial log: {self.link.log_path})")

    def _not_answering(self, what: str, attempt: int, exc: Exception) -> TransferError:
        """No retry helps a board that answers nothing at all (hung, gone, in reset)."""
        return TransferError(f"{what} on {self.link.url}: the board stopped answering on try {attempt} "
                             f"({exc})")

    def _rename(self, part: str, remote: str) -> None:
        """The verified .part under its final name (the rename alone is retried if garbled)."""
        for attempt in range(1, self.retries + 1):
            try:
                self.repl.exec(board_code.RENAME.format(part=part, final=remote))
                return
            except ReplError as exc:
                error = _garbled(exc)
                if error is None:
                    raise
            except ReplProtocolError as exc:
                error = exc
                self.repl.forget()
            self.note(f"rename {part} -> {remote}: try {attempt} failed: {error}")
        raise TransferError(f"put {remote} on {self.link.url}: verified as {part} but could not rename it "
                            f"after {self.retries} tries ({error}); serial log: {self.link.log_path}")

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
            result = self.repl.exec_finish(5.0)
            if result.stderr:
                raise parse_traceback(result.stderr)
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
                    result = self.repl.exec_finish(5.0)
                    if result.stderr:
                        raise parse_traceback(result.stderr)
                    raise ReplProtocolError(f"put {part}: unexpected bytes from the receiver "
                                            f"{result.stdout[:80]!r}")
            acked += ok
            if progress:
                progress(min(size, acked * win), size)
        result = self.repl.exec_finish(10.0 + size / 100_000)
        if result.stderr:
            raise parse_traceback(result.stderr)
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
        self.repl.exec(f"_hf = open({part!r}, 'wb')\nimport ubinascii as _hb\n_hw = _hf.write\n_ha = _hb.a2b_base64")
        try:
            step = B64_CHUNK * B64_PER_EXEC
            for start in range(0, len(data), step):
                block = data[start:start + step]
                lines = [f"_hw(_ha({base64.b64encode(block[i:i + B64_CHUNK]).decode()!r}))"
                         for i in range(0, len(block), B64_CHUNK)]
                self.repl.exec("\n".join(lines), 30.0)
                if progress:
                    progress(min(len(data), start + step), len(data))
        finally:
            self.repl.exec("_hf.close()\ndel _hf, _hw, _ha")
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
        size = 0
        if self.fast_baud and streaming:   # worth a baud switch? ask the size first
            out = self.repl.exec(f"import uos\nprint(uos.stat({remote!r})[6])\n")
            size = int(out.strip() or 0)
        with self._maybe_fast(size):
            return self._get_tries(remote, local, progress, streaming)

    def _get_tries(self, remote: str, local: Path | str | None, progress: Progress | None,
                   streaming: bool) -> bytes:
        last: Exception | None = None
        for attempt in range(1, self.retries + 1):
            try:
                try:
                    data, theirs = (self._get_stream(remote, progress) if streaming
                                    else self._get_b64(remote, progress))
                except ReplError as exc:
                    raise _garbled(exc) or exc from None
            except (ReplProtocolError, TransferError) as exc:
                self.note(f"get {remote}: try {attempt} failed: {exc}")
                self.repl.forget()
                if self.repl.silent:
                    raise self._not_answering(f"get {remote}", attempt, exc) from None
                last = exc
                continue
            ours = hashlib.sha256(data).hexdigest()
            if ours == theirs:
                if local is not None:
                    target = Path(local)
                    tmp = target.with_name(target.name + ".part")
                    tmp.write_bytes(data)
                    os.replace(tmp, target)
                return data
            self.note(f"get {remote}: sha256 mismatch on try {attempt} (host {ours[:16]}, board {theirs[:16]})")
            last = None
        raise TransferError(f"get {remote} on {self.link.url}: no verified copy after {self.retries} tries"
                            + (f" (last error: {last})" if last else "") + f" (serial log: {self.link.log_path})")

    def _start_reading(self, code: str, remote: str) -> int:
        """Run a sender; its first stdout line is the file size (or it raised)."""
        console = self.console
        self.repl.exec_start(code)
        head = console.read_until(b"\r\n", 10.0, error=None)
        if not head or CTRL_D in head:
            console.unread(head)
            result = self.repl.exec_finish(5.0)
            if result.stderr:
                raise parse_traceback(result.stderr)
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
        result = self.repl.exec_finish(10.0)
        if result.stderr:
            raise parse_traceback(result.stderr)
        return b"".join(parts), _digest_line(result.stdout, f"get {remote}")

    def _get_b64(self, remote: str, progress: Progress | None) -> tuple[bytes, str]:
        size = self._start_reading(board_code.B64_SENDER.format(chunk=B64_CHUNK, path=remote), remote)
        per_byte = 10 / max(1, self.link.baud)
        result = self.repl.exec_finish(10.0 + size * per_byte * 3)
        if result.stderr:
            raise parse_traceback(result.stderr)
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
    def _maybe_fast(self, size: int) -> "_FastBaud":
        return _FastBaud(self, size)


class _FastBaud:
    """Context: the REPL UART at fast_baud for one big transfer, then back."""

    def __init__(self, transfer: Transfer, size: int) -> None:
        self.t = transfer
        self.size = size
        self.slow = transfer.link.baud
        self.active = False

    def __enter__(self) -> "_FastBaud":
        t = self.t
        t.last_baud = self.slow
        if t.fast_baud and self.size >= t.fast_threshold and t.streaming:
            self.active = switch_baud(t.repl, t.fast_baud, FAST_RX_BUFFER)
            if self.active:
                t.window = FAST_WINDOW
                t.last_baud = t.fast_baud
        return self

    def __exit__(self, *exc: object) -> None:
        t = self.t
        t.window = SLOW_WINDOW
        if self.active:
            if not switch_baud(t.repl, self.slow, BOOT_RX_BUFFER):
                raise TransferError(f"{t.link.url}: could not switch the REPL back to {self.slow} baud")


BAUD_SETTLE_S = 0.1   # a pty's baud change reaches the simulator by polling (about 50 ms)


def switch_baud(repl: Repl, baud: int, rxbuf: int) -> bool:
    """Switch the board's REPL UART and then the host to ``baud``; verify with a round trip.

    The board answers the command at the old baud (facts/maixpy.md leaves the exact moment of
    the switch UNCONFIRMED; the simulator switches once the reply has left), so the host reads
    the whole reply, then switches. A reply garbled by a board that switched at once is
    tolerated: the round trip at the new baud decides. On failure the host returns to the old
    baud (asking the board to, if it did switch) and we carry on slowly, with a note.
    """
    link = repl.console.link
    old = link.baud
    if baud == old:
        return True
    link.note(f"switching the REPL UART from {old} to {baud} baud")
    try:
        result = repl.exec_raw(board_code.SWITCH.format(baud=baud, rxbuf=rxbuf), 3.0)
        if result.stderr:
            link.note(f"baud switch refused by the board: {parse_traceback(result.stderr)}; staying at {old}")
            return False
    except ReplProtocolError as exc:
        link.note(f"reply to the baud switch garbled ({exc}); checking at {baud}")
        repl.forget()
    link.set_baud(baud)
    time.sleep(BAUD_SETTLE_S)
    try:
        if repl.exec("print(54321)", 3.0) == b"54321\r\n":
            return True
        raise ReplProtocolError("round trip at the new baud garbled")
    except (ReplProtocolError, ReplError) as exc:
        link.note(f"baud switch to {baud} failed ({exc}); back to {old}")
    repl.forget()
    link.set_baud(old)
    time.sleep(BAUD_SETTLE_S)
    try:
        repl.enter_raw(tries=2, timeout=1.0)
        return False      # the board never left the old baud
    except ReplProtocolError:
        pass
    link.set_baud(baud)   # the board did switch: ask it to come back
    time.sleep(BAUD_SETTLE_S)
    try:
        repl.enter_raw(tries=2, timeout=1.0)
        repl.exec_raw(board_code.SWITCH.format(baud=old, rxbuf=BOOT_RX_BUFFER), 3.0)
    except ReplProtocolError:
        pass
    link.set_baud(old)
    time.sleep(BAUD_SETTLE_S)
    try:
        repl.enter_raw(tries=2, timeout=1.0)
    except ReplProtocolError as exc:
        raise TransferError(f"{link.url}: lost the board while switching to {baud} baud: {exc}") from None
    return False
