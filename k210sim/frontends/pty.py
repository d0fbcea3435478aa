"""The pty front end: a pseudo-terminal that looks like /dev/ttyUSB0, with a stable symlink.

- openpty(); the slave is put in raw mode and its fd stays open here, so reads on the master
  never fail with EIO while no client has the port open.
- The client's baud rate is the slave's termios speed, which the master can read: we poll
  ``tcgetattr(master)[5]`` every POLL_S and again right before each batch in either direction.
- DTR/RTS cannot cross a pty (no TIOCM* on Linux ptys); clients that need them use the
  LD_PRELOAD shim, whose datagrams arrive on modem.sock (k210sim.frontends.modem). The shim
  can also ask for a ``drain()`` before a baud change (see there).
- Board output is written non-blocking. When the kernel's pty buffer (~64 KiB) is full -- no
  client, or one that fell that far behind -- output is dropped, as the tty layer drops what a
  USB-serial adapter delivers into a full buffer, and a "tx-drop" event is logged once per
  episode. This never holds up the line, so one idle port cannot slow the others. With pacing
  off (an idealised infinitely fast line) a client cannot keep up with an unpaced board, so
  there we first wait up to STALL_S for the client to drain the buffer.
- ``unplug(duration)`` (the "disconnect" fault): the pty goes away like a USB-serial adapter
  pulled out (both ends closed, so a client's reads fail with EIO; the symlink removed), and
  after ``duration`` seconds a new pty appears behind the same symlink, as udev's by-id link
  does when the adapter is plugged back in.
"""
from __future__ import annotations

import errno
import os
import select
import termios
import threading
import time
import tty
from pathlib import Path

from k210sim.errors import SimError
from k210sim.pacing import BITS_PER_BYTE
from k210sim.uart import DEFAULT_BAUD, SerialLine

POLL_S = 0.01
STALL_S = 0.25
DRAIN_MAX_S = 5.0
READ_WINDOW_S = 0.005    # read about this much line time per pass, so baud polls stay frequent

SPEEDS: dict[int, int] = {}
for _name in dir(termios):
    if _name.startswith("B") and _name[1:].isdigit():
        SPEEDS[getattr(termios, _name)] = int(_name[1:])
CODES = {baud: code for code, baud in SPEEDS.items()}


class PtyFrontEnd:
    name = "pty"

    def __init__(self, line: SerialLine, link: Path | None) -> None:
        self.line = line
        self.link = Path(link) if link is not None else None
        self.master, self.slave, self.device = self._open_pty()
        self._baud = DEFAULT_BAUD
        self._lock = threading.Lock()
        self._io_lock = threading.Lock()   # no write may race the fds being closed
        self._rx_lock = threading.Lock()   # one reader at a time: the loop, or a drain
        self._closed = False
        self._unplugged = False
        self._stalled = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read_loop, name="sim-pty", daemon=True)
        self._replug: threading.Thread | None = None

    def _open_pty(self) -> tuple[int, int, str]:
        master, slave = os.openpty()
        try:
            tty.setraw(slave)
            attrs = termios.tcgetattr(slave)
            attrs[4] = attrs[5] = CODES[DEFAULT_BAUD]
            termios.tcsetattr(slave, termios.TCSANOW, attrs)
            os.set_blocking(master, False)
            device = os.ttyname(slave)
            if self.link is not None:
                self._make_link(device)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        return master, slave, device

    def _make_link(self, device: str) -> None:
        link = self.link
        if link.is_symlink():
            link.unlink()
        elif link.exists():
            raise SimError(f"pty link {link} exists and is not a symlink")
        try:
            link.parent.mkdir(parents=True, exist_ok=True)
            tmp = link.with_name(f".{link.name}.{os.getpid()}")
            if tmp.is_symlink():
                tmp.unlink()
            os.symlink(device, tmp)
            os.replace(tmp, link)
        except OSError as exc:
            raise SimError(f"cannot create pty link {link}: {exc.strerror}") from None

    def start(self) -> None:
        self.line.attach_frontend(self)
        self._thread.start()

    # -- FrontEnd -------------------------------------------------------------------------
    def host_baud(self) -> int:
        if self._closed or self._unplugged:
            return self._baud
        try:
            code = termios.tcgetattr(self.master)[5]
        except (termios.error, OSError):
            return self._baud
        baud = SPEEDS.get(code, self._baud)
        with self._lock:
            changed = baud != self._baud
            self._baud = baud
        if changed:
            self.line.note_host_baud(self.name, baud)
        return baud

    def send(self, data: bytes) -> None:
        with self._io_lock:
            if not self._closed and not self._unplugged:
                self._send(memoryview(data))

    def _send(self, view: memoryview) -> None:
        while view and not self._stop.is_set():
            try:
                n = os.write(self.master, view)
            except BlockingIOError:
                n = 0
            except OSError as exc:
                if exc.errno == errno.EIO:
                    return
                raise
            if n:
                self._stalled = False
                view = view[n:]
                continue
            if not self._stalled and not self.line.pace:
                _, writable, _ = select.select([], [self.master], [], STALL_S)
                if writable:
                    continue
            if not self._stalled:
                self._stalled = True
                self.line.events.emit("tx-drop", source=self.name, bytes=len(view),
                                      why="pty buffer full (no client, or it fell behind)")
            return

    # -- reader ---------------------------------------------------------------------------
    def _read_loop(self) -> None:
        while not self._stop.is_set():
            if self._unplugged:
                self._stop.wait(POLL_S)
                continue
            baud = self.host_baud()
            try:
                ready, _, _ = select.select([self.master], [], [], POLL_S)
            except (OSError, ValueError):
                if self._unplugged:
                    continue   # closed under us by unplug(): wait for the new pty
                return
            if not ready:
                continue
            want = 65536 if not self.line.pace else max(16, int(baud / BITS_PER_BYTE * READ_WINDOW_S))
            if self._read_once(want) is None:
                return

    def _read_once(self, want: int) -> int | None:
        """Read what is pending (up to want) and put it on the line; None when the pty is gone."""
        with self._rx_lock:
            if self._closed:
                return None
            if self._unplugged:
                return 0
            try:
                data = os.read(self.master, want)
            except BlockingIOError:
                return 0
            except OSError as exc:
                if exc.errno == errno.EIO:
                    self._stop.wait(POLL_S)
                    return 0
                return None
            if data:
                self.line.from_host(data, self)
            return len(data)

    def drain(self) -> None:
        """Put every byte the client has written so far on the line, at the current baud.

        A pty cannot order a client's termios change against the bytes it wrote before it
        (kflash writes its boot command and at once drops the baud rate). A client under the
        modem-line shim asks for a drain (modem.sock "DRAIN") before its tcsetattr, which makes
        "bytes written before the baud change go out at the old baud" hold exactly.
        """
        # Read until EAGAIN: n_tty's read flushes the kernel's pending pty buffer work before it
        # reports "nothing there", so every byte written before the request is picked up even
        # if it had not reached the master yet. The client is blocked waiting for our answer,
        # so this ends; the cap is only a guard against a second writer on the same pty.
        deadline = time.monotonic() + DRAIN_MAX_S
        while not self._stop.is_set() and time.monotonic() < deadline:
            if not self._read_once(65536):
                return

    # -- the "disconnect" fault -------------------------------------------------------------
    def unplug(self, duration: float) -> None:
        """The adapter is pulled out now and plugged back in after ``duration`` seconds."""
        with self._io_lock, self._rx_lock:
            if self._closed or self._unplugged:
                return
            self._unplugged = True
            self._remove_link()
            self._close_fds()
        self.line.events.emit("unplug", source=self.name, device=self.device, duration=duration)
        self._replug = threading.Thread(target=self._plug_back, args=(duration,),
                                        name="sim-pty-replug", daemon=True)
        self._replug.start()

    def _plug_back(self, duration: float) -> None:
        if self._stop.wait(duration):
            return
        with self._io_lock, self._rx_lock:
            if self._closed:
                return
            try:
                self.master, self.slave, self.device = self._open_pty()
            except (OSError, SimError) as exc:
                self.line.events.emit("frontend-error", source=self.name, error=f"replug failed: {exc}")
                return
            self._unplugged = False
            self._stalled = False
        self.line.events.emit("plug", source=self.name, device=self.device)

    def _remove_link(self) -> None:
        if self.link is not None:
            try:
                if self.link.is_symlink() and os.readlink(self.link) == self.device:
                    self.link.unlink()
            except OSError:
                pass

    def _close_fds(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def close(self) -> None:
        self._stop.set()
        self.line.detach_frontend(self)
        for t in (self._thread, self._replug):
            if t is not None and t.is_alive():
                t.join(timeout=2.0)
        with self._io_lock, self._rx_lock:
            unplugged, self._closed = self._unplugged, True
            if not unplugged:
                self._remove_link()
                self._close_fds()
