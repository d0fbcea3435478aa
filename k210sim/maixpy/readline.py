"""The friendly REPL's line editor, behaving like MicroPython 1.11 lib/mp-readline.

MaixPy builds it with MICROPY_REPL_EMACS_KEYS and MICROPY_REPL_AUTO_INDENT on, so:
- Ctrl-A..Ctrl-E on an empty line are returned to the REPL (raw REPL, banner, cancel, soft reset,
  paste mode); on a non-empty line Ctrl-A/E/B/F/D/K/U/N/P are emacs editing keys, Ctrl-C cancels.
- "\\r" ends the line (echo "\\r\\n"); "\\n" is ignored; Tab completion is not emulated (ignored).
- Backspace removes up to 4 spaces of indentation at once; echo "\\b\\x1b[K" (VT100).
- A continuation line is auto-indented: 4 spaces per indent level of the previous line, one more
  after a line ending in ':', none after two blank-ish lines.
Echo is produced exactly as readline's redraw does (cursor moves: "\\b" up to 4, else ESC[nD).
"""
from __future__ import annotations

from typing import Callable

CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E = 1, 2, 3, 4, 5
CTRL_F, CTRL_K, CTRL_N, CTRL_P, CTRL_U = 6, 11, 14, 16, 21
HIST_SIZE = 8


def move_back(n: int) -> bytes:
    if n <= 0:
        return b""
    if n <= 4:
        return b"\b" * n
    return b"\x1b[%dD" % n


class LineEditor:
    """One board's readline state (history survives across lines, as on the board)."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write
        self.history: list[str] = []
        self.line = ""           # whole input so far, including earlier continuation lines
        self.orig = 0            # where the line being edited starts
        self.cursor = 0
        self._esc = 0            # 0 none, 1 ESC, 2 ESC[, 3 ESC[digit, 4 ESC O
        self._esc_digit = ""
        self._hist = -1

    def start(self, line: str, prompt: str) -> None:
        """readline_init: begin editing after ``line`` (earlier lines), printing ``prompt``."""
        self.line = line
        self.orig = self.cursor = len(line)
        self._esc = 0
        self._hist = -1
        self._write(prompt.encode())
        self._auto_indent()

    def _auto_indent(self) -> None:
        line = self.line
        if len(line) > 1 and line.endswith("\n"):
            i = len(line) - 1
            while i > 0 and line[i - 1] != "\n":
                i -= 1
            j = i
            while j < len(line) and line[j] == " ":
                j += 1
            if i > 0 and j + 1 == len(line):
                # previous line is all spaces: stop indenting after two such lines
                k = i - 1
                while k > 0:
                    if line[k - 1] == "\n":
                        return
                    if line[k - 1] != " ":
                        break
                    k -= 1
            n = (j - i) // 4
            if line[-2] == ":":
                n += 1
            if n > 0:
                self.line += "    " * n
                self.cursor += 4 * n
                self._write(b"    " * n)

    def process(self, c: int) -> int:
        """Feed one byte; returns -1 to continue, 0 for end of line, or a control code 1..5."""
        last_len = len(self.line)
        back = 0
        redraw = False
        forward = 0
        line = self.line
        if self._esc == 0:
            empty = len(line) == self.orig
            if CTRL_A <= c <= CTRL_E and empty:
                return c
            if c == CTRL_A:
                back = self.cursor - self.orig
            elif c == CTRL_B:
                back = 1 if self.cursor > self.orig else 0
            elif c == CTRL_C:
                return c
            elif c == CTRL_D:
                if self.cursor < len(line):
                    self.line = line[:self.cursor] + line[self.cursor + 1:]
                    redraw = True
            elif c == CTRL_E:
                forward = len(line) - self.cursor
            elif c == CTRL_F:
                forward = 1 if self.cursor < len(line) else 0
            elif c == CTRL_K:
                self.line = line[:self.cursor]
                redraw = True
            elif c == CTRL_N:
                back, redraw, forward = self._history_move(-1)
            elif c == CTRL_P:
                back, redraw, forward = self._history_move(+1)
            elif c == CTRL_U:
                back = self.cursor - self.orig
                self.line = line[:self.orig] + line[self.cursor:]
                redraw = True
            elif c == 13:
                self._write(b"\r\n")
                self._push_history(self.line[self.orig:])
                return 0
            elif c == 27:
                self._esc = 1
            elif c in (8, 127):
                if self.cursor > self.orig:
                    seg = line[self.orig:self.cursor]
                    nspace = 4 if len(seg) >= 4 and seg.strip(" ") == "" else 1
                    self.line = line[:self.cursor - nspace] + line[self.cursor:]
                    back = nspace
                    redraw = True
            elif 32 <= c <= 126:
                self.line = line[:self.cursor] + chr(c) + line[self.cursor:]
                redraw = True
                forward = 1
        elif self._esc == 1:
            self._esc = {ord("["): 2, ord("O"): 4}.get(c, 0)
        elif self._esc == 2:
            if 48 <= c <= 57:
                self._esc = 3
                self._esc_digit = chr(c)
            else:
                self._esc = 0
                if c == ord("A"):
                    back, redraw, forward = self._history_move(+1)
                elif c == ord("B"):
                    back, redraw, forward = self._history_move(-1)
                elif c == ord("C"):
                    forward = 1 if self.cursor < len(line) else 0
                elif c == ord("D"):
                    back = 1 if self.cursor > self.orig else 0
                elif c == ord("H"):
                    back = self.cursor - self.orig
                elif c == ord("F"):
                    forward = len(line) - self.cursor
        elif self._esc == 3:
            self._esc = 0
            if c == ord("~"):
                d = self._esc_digit
                if d in "17":
                    back = self.cursor - self.orig
                elif d in "48":
                    forward = len(line) - self.cursor
                elif d == "3" and self.cursor < len(line):
                    self.line = line[:self.cursor] + line[self.cursor + 1:]
                    redraw = True
        else:
            self._esc = 0
            if c == ord("H"):
                back = self.cursor - self.orig
            elif c == ord("F"):
                forward = len(line) - self.cursor
        self._redraw(last_len, back, redraw, forward)
        return -1

    def _history_move(self, step: int) -> tuple[int, bool, int]:
        new = self._hist + step
        if step > 0 and not (new < HIST_SIZE and new < len(self.history)):
            return 0, False, 0
        if step < 0 and self._hist < 0:
            return 0, False, 0
        self._hist = new
        text = self.history[new] if new >= 0 else ""
        back = self.cursor - self.orig
        self.line = self.line[:self.orig] + text
        return back, True, len(self.line) - self.orig

    def _redraw(self, last_len: int, back: int, redraw: bool, forward: int) -> None:
        out = bytearray()
        if back > 0:
            out += move_back(back)
            self.cursor -= back
        if redraw:
            if len(self.line) < last_len:
                out += b"\x1b[K"
            out += self.line[self.cursor:].encode()
            out += move_back(len(self.line) - (self.cursor + forward))
            self.cursor += forward
        elif forward > 0:
            out += self.line[self.cursor:self.cursor + forward].encode()
            self.cursor += forward
        if out:
            self._write(bytes(out))

    def _push_history(self, text: str) -> None:
        if text and (not self.history or self.history[0] != text):
            self.history.insert(0, text)
            del self.history[HIST_SIZE:]


def continue_with_input(text: str) -> bool:
    """py/repl.c mp_repl_continue_with_input: does this REPL input need another line?"""
    if not text:
        return False

    def starts_with_word(word: str) -> bool:
        return text.startswith(word) and (len(text) == len(word)
                                          or not (text[len(word)].isalnum() or text[len(word)] == "_"))

    compound = text[0] == "@" or any(starts_with_word(w) for w in
                                     ("if", "while", "for", "try", "with", "def", "class"))
    n_paren = n_brack = n_brace = 0
    quote = 0   # 0 none, 1 ', 2 ", 3 ''', 4 """
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "'":
            if quote in (0, 3) and text[i + 1:i + 3] == "''":
                i += 2
                quote = 3 - quote
            elif quote in (0, 1):
                quote = 1 - quote
        elif ch == '"':
            if quote in (0, 4) and text[i + 1:i + 3] == '""':
                i += 2
                quote = 4 - quote if quote == 0 else 0
            elif quote in (0, 2):
                quote = 2 - quote
        elif ch == "\\" and i + 1 < n and text[i + 1] in "'\"\\":
            if quote != 0:
                i += 1
        elif quote == 0:
            if ch == "(":
                n_paren += 1
            elif ch == ")":
                n_paren -= 1
            elif ch == "[":
                n_brack += 1
            elif ch == "]":
                n_brack -= 1
            elif ch == "{":
                n_brace += 1
            elif ch == "}":
                n_brace -= 1
        i += 1
    if quote in (3, 4):
        return True
    if (n_paren > 0 or n_brack > 0 or n_brace > 0) and quote == 0:
        return True
    if text.endswith("\\"):
        return True
    return compound and not text.endswith("\n")
