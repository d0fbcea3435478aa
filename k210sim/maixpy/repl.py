"""MicroPython 1.11's REPLs (lib/utils/pyexec.c, non-event-driven) on the board console.

Friendly REPL: banner, ``>>> `` with the line editor (k210sim.maixpy.readline), ``... ``
continuation for compound statements and open brackets (auto-indented), expressions echo their
repr, Ctrl-A raw REPL, Ctrl-B banner, Ctrl-C new line, Ctrl-D soft reset, Ctrl-E paste mode
("paste mode; Ctrl-C to cancel, Ctrl-D to finish\\r\\n=== ").

Raw REPL: "raw REPL; CTRL-B to exit\\r\\n>"; bytes up to Ctrl-D are the program; reply "OK",
its output, "\\x04", the traceback if any, "\\x04", then ">". Ctrl-A re-prints the banner and
starts over, Ctrl-B goes to the friendly REPL ("\\r\\n" + banner), Ctrl-C clears the program,
Ctrl-D on an empty program answers "OK\\r\\n" and soft-resets. Every other byte is program text,
so the raw-paste probe "\\x05A\\x01" of MicroPython >= 1.14 is not understood: \\x05 and A land in
the buffer, \\x01 restarts the raw REPL (banner again, buffer cleared); mpremote then falls back
to the plain raw REPL. Raw input and paste mode are processed in chunks (no per-byte loop).
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from k210sim.maixpy.readline import CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E, LineEditor, \
    continue_with_input
from k210sim.maixpy.runtime import ERROR

if TYPE_CHECKING:
    from k210sim.maixpy.firmware import MaixPyFirmware
    from k210sim.maixpy.runtime import Runtime

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
PASTE_BANNER = b"\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== "
_RAW_CTRL = re.compile(rb"[\x01-\x04]")
_PASTE_CTRL = re.compile(rb"[\x03\x04]")
RESET = "reset"
SWITCH = "switch"


class Repl:
    def __init__(self, fw: "MaixPyFirmware", rt: "Runtime") -> None:
        self.fw = fw
        self.rt = rt
        self.console = fw.console
        self.editor = LineEditor(self.console.write)

    def run(self) -> None:
        """The REPL loop of mp_task; returns when a soft reset is requested."""
        while True:
            result = self.raw() if self.fw.mode == "raw" else self.friendly()
            if result == RESET:
                return

    # -- friendly ---------------------------------------------------------------------------------
    def banner(self) -> None:
        self.console.write_str(self.fw.build.banner + "\r\n"
                               + 'Type "help()" for more information.\r\n')

    def _readline(self, prefix: str, prompt: str) -> int:
        ed = self.editor
        ed.start(prefix, prompt)
        while True:
            ret = ed.process(self.console.getch())
            if ret >= 0:
                return ret

    def friendly(self) -> str:
        w = self.console.write
        self.banner()
        while True:
            ret = self._readline("", ">>> ")
            line = self.editor.line
            mode = "single"
            if ret == CTRL_A:
                w(b"\r\n")
                self.fw.mode = "raw"
                return SWITCH
            if ret == CTRL_B:
                w(b"\r\n")
                self.banner()
                continue
            if ret == CTRL_C:
                w(b"\r\n")
                continue
            if ret == CTRL_D:
                w(b"\r\n")
                return RESET
            if ret == CTRL_E:
                source = self._paste()
                if source is None:
                    continue
                line, mode = source, "exec"
            elif not line:
                continue
            else:
                cancelled = False
                while continue_with_input(line):
                    line += "\n"
                    ret = self._readline(line, "... ")
                    line = self.editor.line
                    if ret == CTRL_C:
                        w(b"\r\n")
                        cancelled = True
                        break
                    if ret == CTRL_D:
                        break
                if cancelled:
                    continue
            status, exc = self.rt.execute(line, "<stdin>", mode)
            if status == ERROR and exc is not None:
                self.rt.print_exception(exc)

    def _paste(self) -> str | None:
        console = self.console
        console.write(PASTE_BANNER)
        buf = bytearray()
        while True:
            chunk = console.read_some()
            m = _PASTE_CTRL.search(chunk)
            part = chunk[:m.start()] if m else chunk
            buf += part
            if part:
                console.write(part.replace(b"\r", b"\r\n=== "))
            if m is None:
                continue
            console.unread(chunk[m.end():])
            console.write(b"\r\n")
            if chunk[m.start()] == CTRL_C:
                return None
            return buf.decode("utf-8", "replace")

    # -- raw --------------------------------------------------------------------------------------
    def raw(self) -> str:
        console = self.console
        console.write(RAW_BANNER)
        while True:
            console.write(b">")
            line = bytearray()
            while True:
                chunk = console.read_some()
                m = _RAW_CTRL.search(chunk)
                if m is None:
                    line += chunk
                    continue
                line += chunk[:m.start()]
                console.unread(chunk[m.end():])
                ctrl = chunk[m.start()]
                if ctrl == CTRL_A:
                    console.write(RAW_BANNER + b">")
                    line = bytearray()
                elif ctrl == CTRL_B:
                    console.write(b"\r\n")
                    self.fw.mode = "friendly"
                    return SWITCH
                elif ctrl == CTRL_C:
                    line = bytearray()
                else:
                    break
            console.write(b"OK")
            if not line:
                console.write(b"\r\n")
                return RESET
            status, exc = self.rt.execute(bytes(line), "<stdin>", "exec")
            console.write(b"\x04")
            if status == ERROR and exc is not None:
                self.rt.print_exception(exc)
            console.write(b"\x04")
