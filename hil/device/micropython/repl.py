"""MicroPython raw REPL client (MicroPython's pyexec.c framing, mpremote's flow).

Raw REPL: Ctrl-A gives ``raw REPL; CTRL-B to exit\\r\\n>``; code ends with Ctrl-D; the board
answers ``OK``, the code's stdout, ``\\x04``, its stderr (a traceback), ``\\x04``, then ``>``.

Raw-paste (``\\x05A\\x01``, MicroPython >= 1.14) is probed once per connection exactly as
mpremote does: ``R\\x01`` = supported (flow-controlled windows), ``R\\x00`` = understood but
refused, anything else = not understood. MaixPy v0.6.x is older than raw-paste: its raw REPL
keeps ``\\x05A`` as input, treats ``\\x01`` as Ctrl-A and prints the banner again, so we wait for
that banner and fall back to plain raw REPL (UNCONFIRMED on hardware).

Plain raw REPL code goes out in 256-byte chunks like mpremote, but the pause between chunks is
half a chunk's wire time at the link's baud (mpremote's fixed 10 ms at 115200): never slower
than the line, and never more than twice its rate into the board's receive buffer.

The REPL records the mode it puts the board in (hil.board.state: raw or friendly REPL) and, when
the boot log shows up where a reply should be, reports the reboot (``rebooted(UNEXPECTED)``) and
raises BoardRebooted. It subscribes to the board's events: after a reboot it enters raw REPL
again before the next exec; after a reconnection (or a new build) it probes raw-paste again.
"""
from __future__ import annotations

import ast
import re
import struct
import time
from dataclasses import dataclass

from hil.board.state import UNEXPECTED, BoardEvents, RebootCause, State
from hil.console import Console
from hil.device.micropython.bootlog import REBOOT_MARKERS, rebooted_in
from hil.errors import BoardRebooted, ReplError, ReplProtocolError

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
RAW_PROMPT = RAW_BANNER + b">"
CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E = b"\x01", b"\x02", b"\x03", b"\x04", b"\x05"
RAW_PASTE_PROBE = b"\x05A\x01"
CHUNK = 256
ENTER_TRIES = 3
ENTER_TIMEOUT_S = 2.0
SILENT_RETRY_S = 0.3      # per try, once a try got no answer at all
TRACEBACK_TIMEOUT_S = 5.0

REBOOT_SNIFF_S = 0.3

_EXC_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)(?:: (.*))?$", re.S)


def parse_traceback(stderr: bytes) -> ReplError:
    """ReplError from a device traceback: class and message from its last non-blank line.

    The message keeps its trailing spaces: MaixPy's kpu texts end in one and the firmware
    profiles compare them exactly.
    """
    # a stray CR (a garbled line) must not hide the start of the message when it is printed
    text = stderr.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return ReplError("Error", "", text)
    last = lines[-1]
    m = _EXC_LINE.match(last.lstrip())
    if m is None:
        return ReplError("Error", last, text)
    return ReplError(m.group(1), m.group(2) or "", text)


@dataclass
class ExecResult:
    stdout: bytes
    stderr: bytes


class Repl:
    """Raw REPL over a console. One instance per connection (it remembers raw-paste support)."""

    def __init__(self, console: Console, events: BoardEvents | None = None, chunk: int = CHUNK,
                 use_raw_paste: bool = True) -> None:
        self.console = console
        self.events = events if events is not None else BoardEvents()
        self.events.subscribe(self)
        self.chunk = chunk
        self._prompt = False      # the raw REPL's ">" was the last thing seen: ready for code
        self._use_raw_paste = use_raw_paste
        # None = not probed on this connection yet; False = plain raw REPL only.
        self.raw_paste: bool | None = None if use_raw_paste else False
        self.silent = False   # the last enter_raw got no byte at all: the board is not listening

    @property
    def in_raw(self) -> bool:
        """At the raw REPL's prompt, ready for code."""
        return self._prompt and self.events.state is State.RAW

    @property
    def link(self):
        return self.console.link

    def note(self, text: str) -> None:
        self.console.link.note(f"repl: {text}")

    def forget(self) -> None:
        """The exchange went wrong (garbled, interrupted): re-enter raw REPL before the next exec."""
        self._prompt = False

    # -- board events ------------------------------------------------------------------------
    def rebooted(self, cause: RebootCause) -> None:
        self._prompt = False
        if not cause.same_firmware:
            self._reprobe()

    def reconnected(self) -> None:
        self._prompt = False
        self._reprobe()

    def _reprobe(self) -> None:
        self.raw_paste = None if self._use_raw_paste else False

    def _saw_reboot(self) -> None:
        """The boot log came instead of a reply: everything the board held is gone."""
        self._prompt = False
        self.events.rebooted(UNEXPECTED)

    # -- entering and leaving ----------------------------------------------------------------
    def enter_raw(self, tries: int = ENTER_TRIES, timeout: float = ENTER_TIMEOUT_S) -> None:
        """Interrupt whatever runs (Ctrl-C twice), then Ctrl-A until the raw REPL banner shows.

        A live MicroPython answers Ctrl-A with the banner at once (or with something, if the
        line is garbled). After a try that got no byte at all the board is not listening (hung,
        held in reset, in ISP mode, gone): the remaining tries wait only SILENT_RETRY_S, enough
        for a board that has just come back, so a dead board is reported in about ``timeout``.
        """
        wait = timeout
        for attempt in range(1, tries + 1):
            before = self.link.bytes_in
            self.console.write(b"\r" + CTRL_C + CTRL_C)
            self.console.drain(quiet=0.1, limit=1.0)
            self.console.write(b"\r" + CTRL_A)
            if self.console.read_until(RAW_PROMPT, wait, error=None):
                self._prompt = True
                self.events.enter(State.RAW)
                self.silent = False
                return
            silent = self.link.bytes_in == before
            if silent:
                wait = min(timeout, SILENT_RETRY_S)
            self.note(f"no raw REPL banner (try {attempt} of {tries}"
                      + (", no answer at all)" if silent else ")"))
        self._prompt = False
        self.silent = silent
        raise self.console.error(ReplProtocolError,
                                 f"no raw REPL banner after {tries} tries (Ctrl-C, Ctrl-A)", timeout)

    def leave_raw(self) -> None:
        """Ctrl-B: back to the friendly REPL (the board prints its banner and ``>>> ``)."""
        self.console.write(CTRL_B)
        self._prompt = False
        self.events.enter(State.FRIENDLY)

    def ensure_raw(self) -> None:
        if not self.in_raw:
            self.enter_raw()

    # -- sending code ------------------------------------------------------------------------
    def _probe_raw_paste(self) -> bool:
        self.console.write(RAW_PASTE_PROBE)
        index = self.console.expect([re.escape(b"R\x00"), re.escape(b"R\x01"), re.escape(RAW_PROMPT)],
                                    ENTER_TIMEOUT_S, what="waiting for the answer to the raw-paste probe")
        self.raw_paste = index == 1
        self.note("raw-paste " + ("supported" if self.raw_paste else
                                  "refused (R\\x00)" if index == 0 else "not understood: plain raw REPL"))
        return self.raw_paste

    def _raw_paste_write(self, data: bytes) -> None:
        head = self.console.read_exact(2, ENTER_TIMEOUT_S, what="waiting for the raw-paste window size")
        window = struct.unpack("<H", head)[0]
        remain = window
        i = 0
        while i < len(data):
            while True:
                flag = self.console.read(1, 0.0 if remain else 10.0)
                if not flag:
                    if remain:
                        break
                    raise self.console.error(ReplProtocolError, "raw-paste: no window credit from the board", 10.0)
                if flag == b"\x01":
                    remain += window
                elif flag == CTRL_D:
                    self.console.write(CTRL_D)   # the board ended the paste early (a syntax error)
                    return
                else:
                    raise self.console.error(ReplProtocolError, f"raw-paste: unexpected byte {flag!r}")
            piece = data[i:i + remain]
            self.console.write(piece)
            remain -= len(piece)
            i += len(piece)
        self.console.write(CTRL_D)
        self.console.read_until(CTRL_D, 10.0, what="waiting for the board to acknowledge the end of raw-paste data")

    def _plain_write(self, data: bytes) -> None:
        pause = self.chunk * 10 / max(1, self.link.baud) / 2
        for i in range(0, len(data), self.chunk):
            self.console.write(data[i:i + self.chunk])
            if i + self.chunk < len(data):
                time.sleep(pause)
        self.console.write(CTRL_D)
        reply = self.console.read_exact(2, ENTER_TIMEOUT_S, what="waiting for OK after the code")
        if reply != b"OK":
            self.console.unread(reply)
            raise self.console.error(ReplProtocolError, f"expected OK after the code, got {reply!r}")

    def exec_start(self, code: str | bytes) -> None:
        """Send code; returns once the board runs it. Follow with exec_finish()."""
        data = code.encode("utf-8") if isinstance(code, str) else code
        for attempt in (1, 2):
            self.ensure_raw()
            since = self.link.bytes_in
            try:
                if self.raw_paste is None:
                    self._probe_raw_paste()
                    if self.raw_paste:
                        self._raw_paste_write(data)
                        break
                elif self.raw_paste:
                    self.console.write(RAW_PASTE_PROBE)
                    reply = self.console.read_exact(2, ENTER_TIMEOUT_S, what="waiting for raw-paste R\\x01")
                    if reply != b"R\x01":
                        raise self.console.error(ReplProtocolError, f"raw-paste refused mid-session ({reply!r})")
                    self._raw_paste_write(data)
                    break
                self._plain_write(data)
                break
            except ReplProtocolError as exc:
                self._prompt = False
                if attempt == 2 or isinstance(exc, BoardRebooted):
                    raise
                if self._rebooted(since):
                    self._saw_reboot()
                    raise self.console.error(BoardRebooted, "sending code: the board rebooted "
                                             "while receiving it") from None
                self.note("code not accepted; re-entering raw REPL and sending again")
        self._prompt = False   # until the closing prompt is seen

    def _rebooted(self, since: int) -> bool:
        """Did the bytes received since ``bytes_in`` was ``since`` include a boot log? Waits up
        to REBOOT_SNIFF_S for more; every byte read stays in the console's buffer."""
        deadline = time.monotonic() + REBOOT_SNIFF_S
        taken: list[bytes] = []
        try:
            while True:
                n = min(4096, self.link.bytes_in - since)
                recent = self.link.tail(n) if n > 0 else b""   # tail(0) would be all of it
                if rebooted_in(recent):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                chunk = self.console.read(4096, min(left, 0.05))
                if chunk:
                    taken.append(chunk)
        finally:
            self.console.unread(b"".join(taken))

    def exec_finish(self, timeout: float) -> ExecResult:
        """Collect stdout and stderr of the running code, and the prompt after them.

        A boot log instead of the reply (the board rebooted under the code) is a
        BoardRebooted at once, not after ``timeout``."""
        try:
            out = self.console.read_until(CTRL_D, timeout, abort=REBOOT_MARKERS,
                                          what=f"waiting for the code to finish (timeout {timeout:g} s)")
            err = self.console.read_until(CTRL_D, TRACEBACK_TIMEOUT_S, abort=REBOOT_MARKERS,
                                          what="waiting for the end of the traceback")
        except BoardRebooted:
            self._saw_reboot()
            raise
        if self.console.read_until(b">", 1.0, error=None):
            self._prompt = True
        return ExecResult(out[:-1], err[:-1])

    def exec_raw(self, code: str | bytes, timeout: float = 10.0) -> ExecResult:
        self.exec_start(code)
        return self.exec_finish(timeout)

    def exec(self, code: str | bytes, timeout: float = 10.0) -> bytes:
        """Run code on the board; its stdout. A device exception raises ReplError."""
        result = self.exec_raw(code, timeout)
        if result.stderr:
            raise parse_traceback(result.stderr)
        return result.stdout

    def eval(self, expr: str, timeout: float = 10.0):
        """Evaluate an expression on the board; its repr read back with ast.literal_eval."""
        out = self.exec(f"print(repr({expr}))", timeout)
        text = out.decode("utf-8", "replace").strip()
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise ReplProtocolError(f"eval({expr!r}) on {self.link.url}: the board printed {text[:200]!r}, "
                                    "not a Python literal") from None
