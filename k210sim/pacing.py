"""Line timing and line corruption for the simulated UART.

Pacing: a UART moves 10 bits per byte (start, 8 data, stop), so a line at ``baud`` carries
baud/10 bytes a second. ``LinePacer`` is a token-bucket schedule on time.monotonic(): callers
reserve a batch of bytes and sleep until the batch's last stop bit. Oversleeping is paid back
(the schedule does not slip while the line stays busy), so throughput over a second stays
within a fraction of a percent of baud/10. Batches are ~2 ms of line time, so latency stays low.

Garbling: when the two ends of the line disagree on the baud rate, a real UART receives
framing errors and wrong bytes. We model that deterministically: every byte is replaced by
``garble_byte(b)``, which always has its top bit set and always differs from ``b``, so garbled
output never looks like ASCII text, a prompt or a line ending. The byte count is kept (a real
mismatch also drops or adds bytes; we keep one-for-one so the model stays simple).
"""
from __future__ import annotations

import threading
import time

BITS_PER_BYTE = 10
BATCH_S = 0.002          # line time per paced batch
IDLE_CREDIT_S = 0.002    # how far the schedule may lag "now" before it restarts from now
UNPACED_BATCH = 65536    # bytes moved at once when pacing is off


def _garble_table() -> bytes:
    out = bytearray()
    for b in range(256):
        g = 0x80 | ((b * 37 + 101) & 0x7F)
        if g == b:
            g ^= 0x01
        out.append(g)
    return bytes(out)


GARBLE_TABLE = _garble_table()


def garble(data: bytes) -> bytes:
    """What a receiver at the wrong baud rate makes of ``data`` (see module docstring)."""
    return data.translate(GARBLE_TABLE)


def garble_byte(b: int) -> int:
    return GARBLE_TABLE[b]


def batch_size(baud: int, paced: bool) -> int:
    """Bytes per batch: about BATCH_S of line time, at least one byte."""
    if not paced:
        return UNPACED_BATCH
    return max(1, int(baud / BITS_PER_BYTE * BATCH_S))


def byte_time(baud: int) -> float:
    return BITS_PER_BYTE / max(1, baud)


class LinePacer:
    """One direction of the line: a schedule of when it is free again."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._free_at = 0.0
        self._lock = threading.Lock()

    def reserve(self, nbytes: int, baud: int) -> float:
        """Book ``nbytes`` on the line; returns the monotonic time their last bit arrives."""
        if not self.enabled:
            return 0.0
        with self._lock:
            now = time.monotonic()
            start = max(self._free_at, now - IDLE_CREDIT_S)
            self._free_at = start + nbytes * byte_time(baud)
            return self._free_at

    def send(self, nbytes: int, baud: int) -> None:
        """Reserve and sleep until the bytes have crossed the line."""
        until = self.reserve(nbytes, baud)
        sleep_until(until)


def sleep_until(t: float) -> None:
    left = t - time.monotonic()
    if left > 0:
        time.sleep(left)
