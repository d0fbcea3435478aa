"""SLIP framing as the K210 ISP uses it (kflash 1.1.6: vowstar/kflash.py @ 550828c7 kflash.py,
MAIXLoader.write l.750 and recv_one_return l.768-808).

A frame is ``C0`` + escaped payload + ``C0``. kflash escapes ``DB`` first and then ``C0``, which
gives the standard SLIP escapes (``DB DD`` and ``DB DC``); we do the same.

The decoder is written for a line that may carry garbage: bytes before the first ``C0`` are
dropped, back-to-back ``C0 C0`` (end of one frame, start of the next) yields no empty frame unless
asked, and a bad escape marks the frame as damaged instead of raising, so the caller can treat it
like a checksum error and retry.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD

_ESCAPE_TABLE = {END: bytes((ESC, ESC_END)), ESC: bytes((ESC, ESC_ESC))}


def encode(payload: bytes) -> bytes:
    """One SLIP frame around ``payload``."""
    if END not in payload and ESC not in payload:
        return b"\xc0" + bytes(payload) + b"\xc0"
    return b"\xc0" + bytes(payload).replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


@dataclass(frozen=True)
class Frame:
    payload: bytes
    damaged: bool = False   # an invalid escape sequence was seen inside the frame


_SPECIAL = re.compile(b"[\xc0\xdb]")


def _next_special(data: bytes, start: int) -> int:
    """Index of the next END or ESC byte at or after ``start`` (len(data) if none)."""
    m = _SPECIAL.search(data, start)
    return m.start() if m else len(data)


class SlipDecoder:
    """Incremental decoder: ``feed(data)`` returns the frames completed by ``data``.

    ``keep_empty``: yield ``C0 C0`` as an empty frame (kflash's own reader does; the K210 side
    and our client ignore them, since they are only an end marker followed by a start marker).
    """

    def __init__(self, keep_empty: bool = False, max_frame: int = 1 << 20) -> None:
        self._keep_empty = keep_empty
        self._max = max_frame
        self._buf = bytearray()
        self._in_frame = False
        self._escape = False
        self._damaged = False
        self.discarded = 0   # bytes dropped outside frames (line noise, boot chatter)

    def reset(self) -> None:
        self._buf.clear()
        self._in_frame = False
        self._escape = False
        self._damaged = False

    @property
    def in_frame(self) -> bool:
        return self._in_frame

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        buf = self._buf
        i = 0
        n = len(data)
        while i < n:
            if not self._in_frame:
                j = data.find(b"\xc0", i)
                if j < 0:
                    self.discarded += n - i
                    break
                self.discarded += j - i
                self._in_frame = True
                i = j + 1
                continue
            if self._escape:
                b = data[i]
                i += 1
                self._escape = False
                if b == ESC_END:
                    buf.append(END)
                elif b == ESC_ESC:
                    buf.append(ESC)
                elif b == END:
                    # "DB C0": the frame ends inside an escape; keep what we have, flag it.
                    self._damaged = True
                    self._finish(frames)
                else:
                    self._damaged = True
                    buf.append(b)
                continue
            # Copy the run of plain bytes up to the next special byte in one slice.
            j = _next_special(data, i)
            if j > i:
                buf += data[i:j]
                i = j
                if len(buf) > self._max:
                    # A runaway frame (no end marker on a noisy line): drop it and resync.
                    self.discarded += len(buf)
                    self.reset()
                    continue
            if i < n:
                b = data[i]
                i += 1
                if b == ESC:
                    self._escape = True
                else:
                    self._finish(frames)
        return frames

    def _finish(self, frames: list[Frame]) -> None:
        payload = bytes(self._buf)
        damaged = self._damaged
        self._buf.clear()
        self._damaged = False
        self._escape = False
        if payload or self._keep_empty or damaged:
            frames.append(Frame(payload, damaged))
            self._in_frame = False
        # An empty frame is taken as the start marker of the next one: stay inside a frame.
