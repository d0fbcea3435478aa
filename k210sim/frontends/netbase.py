"""Shared plumbing of the TCP front ends: a listener with one client at a time.

Policy: a new client *replaces* the current one (the old connection is closed). A test or
tool that died without closing its port must not lock everyone out of the board; a client
that is replaced sees its connection drop, which is what it would see if the cable were pulled.

``unplug(duration)`` (the "disconnect" fault): the current client's connection is closed, and
connections made in the next ``duration`` seconds are closed at once, as a ser2net host whose
adapter was pulled out does.
"""
from __future__ import annotations

import errno
import select
import socket
import threading
import time

from k210sim.errors import SimError
from k210sim.uart import DEFAULT_BAUD, SerialLine

SEND_TIMEOUT_S = 5.0
ACCEPT_POLL_S = 0.1


def listen(host: str, port: int, what: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(4)
    except OSError as exc:
        sock.close()
        why = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise SimError(f"cannot listen for {what} on {host}:{port}: {why}") from None
    return sock


class TcpServerFrontEnd:
    """Base: accept loop, one client, board output to that client. Subclasses handle bytes."""

    name = "tcp"
    url_scheme = "socket"

    def __init__(self, line: SerialLine, host: str, port: int) -> None:
        self.line = line
        self._listener = listen(host, port, self.name)
        self.host, self.port = self._listener.getsockname()[:2]
        self.initial_baud = DEFAULT_BAUD   # host baud of a freshly connected client
        self._baud = self.initial_baud
        self._client: socket.socket | None = None
        self._refuse_until = 0.0
        self._wlock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept_loop, name=f"sim-{self.name}-accept", daemon=True)

    @property
    def url(self) -> str:
        return f"{self.url_scheme}://{self.host}:{self.port}"

    def start(self) -> None:
        self.line.attach_frontend(self)
        self._accepter.start()

    def host_baud(self) -> int:
        return self._baud

    # -- connections ----------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._listener], [], [], ACCEPT_POLL_S)
                if not ready:
                    continue
                conn, peer = self._listener.accept()
            except (OSError, ValueError):
                if self._stop.is_set():
                    return
                time.sleep(ACCEPT_POLL_S)
                continue
            if time.monotonic() < self._refuse_until:
                self.line.events.emit("client", source=self.name, action="refused", why="unplugged")
                _shutdown(conn)
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(SEND_TIMEOUT_S)
            with self._wlock:
                old, self._client = self._client, conn
                self._baud = self.initial_baud
            if old is not None:
                self.line.events.emit("client", source=self.name, action="replaced")
                _shutdown(old)
            self.line.events.emit("client", source=self.name, action="connect", peer=f"{peer[0]}:{peer[1]}")
            t = threading.Thread(target=self._serve, args=(conn,), name=f"sim-{self.name}-client", daemon=True)
            self._threads = [x for x in self._threads if x.is_alive()] + [t]
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.on_connect(conn)
            while not self._stop.is_set():
                ready, _, _ = select.select([conn], [], [], ACCEPT_POLL_S)
                if not ready:
                    continue
                data = conn.recv(65536)
                if not data:
                    break
                self.on_data(conn, data)
        except (OSError, ValueError):
            pass
        finally:
            with self._wlock:
                current = self._client is conn
                if current:
                    self._client = None
            if current:
                self.line.events.emit("client", source=self.name, action="disconnect")
                self.on_disconnect()
            _shutdown(conn)

    def on_connect(self, conn: socket.socket) -> None:
        pass

    def on_data(self, conn: socket.socket, data: bytes) -> None:
        self.line.from_host(data, self)

    def on_disconnect(self) -> None:
        pass

    def write_raw(self, conn: socket.socket, data: bytes) -> None:
        """Send to one connection (protocol replies), serialised with board output."""
        with self._wlock:
            try:
                conn.sendall(data)
            except OSError:
                pass

    def encode(self, data: bytes) -> bytes:
        return data

    def send(self, data: bytes) -> None:
        with self._wlock:
            conn = self._client
            if conn is None:
                return  # no client: the bytes are lost, as on a port nobody opened
            try:
                conn.sendall(self.encode(data))
            except OSError:
                self._client = None
                _shutdown(conn)

    def unplug(self, duration: float) -> None:
        """Drop the client now; refuse new ones for ``duration`` seconds."""
        self._refuse_until = time.monotonic() + duration
        with self._wlock:
            conn = self._client
        self.line.events.emit("unplug", source=self.name, duration=duration)
        if conn is not None:
            _shutdown(conn)   # its _serve loop ends and runs on_disconnect (DTR/RTS dropped)

    def close(self) -> None:
        self._stop.set()
        self.line.detach_frontend(self)
        try:
            self._listener.close()
        except OSError:
            pass
        with self._wlock:
            conn, self._client = self._client, None
        if conn is not None:
            _shutdown(conn)
        for t in [self._accepter, *self._threads]:
            if t.is_alive():
                t.join(timeout=2.0)


def _shutdown(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        conn.close()
    except OSError:
        pass
