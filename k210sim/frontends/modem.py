"""modem.sock: DTR/RTS for clients on the pty, from the LD_PRELOAD modem-line shim.

A Linux pty cannot carry modem lines (tty_ioctl(4): TIOCMSET is not a pty ioctl), so the shim turns a client's
TIOCMBIS/TIOCMBIC/TIOCMSET on the pty into datagrams ``DTR=x RTS=y`` (x, y = 0 or 1; either
field may be absent) sent to ``<state>/modem.sock``. Each datagram is applied like an RFC 2217
line change: timestamped on arrival and fed to the board's reset state machine.

``DRAIN`` is a barrier for baud changes: the simulator puts every byte the client has already
written to the pty on the line (at the pty's current, i.e. old, baud), then answers ``OK`` to
the sender's address (the sender must be bound, e.g. autobind). A shim sends it before passing
a TCSETS* ioctl through and waits (with a timeout) for the answer, so bytes written before a
baud change are received at the old rate, as on a real UART.
"""
from __future__ import annotations

import select
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from k210sim.control import UnixBinding

if TYPE_CHECKING:
    from k210sim.board import SimBoard

DRAIN = "DRAIN"
_VALUES = {"0": False, "1": True, "false": False, "true": True}


def parse(datagram: bytes) -> tuple[bool | None, bool | None]:
    """(dtr, rts) from ``b"DTR=1 RTS=0"``; None for a field not given. Raises ValueError."""
    dtr = rts = None
    words = datagram.decode("ascii", errors="replace").split()
    if not words:
        raise ValueError("empty datagram")
    for word in words:
        if word == DRAIN:
            raise ValueError("DRAIN must be a datagram of its own")
        key, _, value = word.partition("=")
        if key.upper() not in ("DTR", "RTS") or value.lower() not in _VALUES:
            raise ValueError(f"bad field {word!r} (expected DTR=0|1 RTS=0|1)")
        if key.upper() == "DTR":
            dtr = _VALUES[value.lower()]
        else:
            rts = _VALUES[value.lower()]
    return dtr, rts


class ModemSocket:
    name = "modem"

    def __init__(self, board: SimBoard, path: Path, drain: Callable[[], None] | None = None) -> None:
        self.board = board
        self.drain = drain
        self.path = Path(path)
        self._binding = UnixBinding(self.path, socket.SOCK_DGRAM)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sim-modem", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        sock = self._binding.sock
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([sock], [], [], 0.1)
                if not ready:
                    continue
                data, sender = sock.recvfrom(512)
            except (OSError, ValueError):
                return
            t = time.monotonic()
            if data.strip() == DRAIN.encode():
                self._drain(sock, sender)
                continue
            try:
                dtr, rts = parse(data)
            except ValueError as exc:
                self.board.events.emit("modem-error", error=str(exc), datagram=data[:64].decode("latin-1"))
                continue
            self.board.set_lines(dtr=dtr, rts=rts, source=self.name, t=t)

    def _drain(self, sock, sender) -> None:
        if self.drain is not None:
            self.drain()
        if sender:
            try:
                sock.sendto(b"OK", sender)
            except OSError:
                pass   # the shim gave up waiting; nothing to do

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self._binding.close()
