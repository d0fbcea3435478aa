"""The simulator's control socket (``<state>/control.sock``) and its client.

Unix stream socket, mode 0600, JSON lines: one request line -> one reply line, as many
requests per connection as the client likes. Requests:

    {"cmd": "status"}                -> {"ok": true, "power", "mode", "profile", "board", "baud", "sd", "boots", ...}
    {"cmd": "power", "on": bool}
    {"cmd": "reset"} / {"cmd": "reset", "boot": true}   (reset button, optionally with BOOT held)
    {"cmd": "sd", "present": bool}
    {"cmd": "events", "since": int}  -> {"ok": true, "events": [{"seq", "t", "kind", ...}], "last": int}
    {"cmd": "fault", "name": str, <param>: value, ...}   (arm one fault of k210sim.faults.FAULTS;
                                                          names "clear", "list", "armed" too)
Any error: {"ok": false, "error": "one line"}.

Unix socket paths are limited to 107 bytes; a longer path is served from a short directory
under the system temp dir, with a symlink at the requested path (``bind_unix``), and clients
connect through the link's target (``connect_path``).
"""
from __future__ import annotations

import json
import os
import select
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from k210sim.errors import SimError

if TYPE_CHECKING:
    from k210sim.board import SimBoard

MAX_UNIX_PATH = 107
MAX_REQUEST = 65536


def connect_path(path: Path | str) -> str:
    """The path to hand to connect()/sendto(): the link target when the path is too long."""
    text = os.fspath(path)
    if len(os.fsencode(text)) > MAX_UNIX_PATH:
        text = os.path.realpath(text)
    return text


class UnixBinding:
    """A bound unix socket at ``path`` (mode 0600), remembering what to remove afterwards."""

    def __init__(self, path: Path, kind: int) -> None:
        self.path = Path(path)
        self._short_dir: str | None = None
        if self.path.is_symlink() or self.path.exists():
            if self.path.is_symlink() or self.path.is_socket():
                self.path.unlink()   # left over from a simulator that died; we hold the state lock
            else:
                raise SimError(f"{self.path} exists and is not a socket")
        real = str(self.path)
        if len(os.fsencode(real)) > MAX_UNIX_PATH:
            self._short_dir = tempfile.mkdtemp(prefix="hilsim-")
            real = os.path.join(self._short_dir, self.path.name)
        self.sock = socket.socket(socket.AF_UNIX, kind)
        try:
            old = os.umask(0o177)
            try:
                self.sock.bind(real)
            finally:
                os.umask(old)
            os.chmod(real, 0o600)
            if self._short_dir is not None:
                os.symlink(real, self.path)
        except OSError as exc:
            self.close()
            raise SimError(f"cannot create socket {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            if self.path.is_symlink() or self.path.exists():
                self.path.unlink()
        except OSError:
            pass
        if self._short_dir is not None:
            shutil.rmtree(self._short_dir, ignore_errors=True)
            self._short_dir = None


class ControlServer:
    def __init__(self, board: SimBoard, path: Path) -> None:
        self.board = board
        self.path = Path(path)
        self._binding = UnixBinding(self.path, socket.SOCK_STREAM)
        self._binding.sock.listen(8)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._accepter = threading.Thread(target=self._accept_loop, name="sim-control", daemon=True)

    def start(self) -> None:
        self._accepter.start()

    def _accept_loop(self) -> None:
        sock = self._binding.sock
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([sock], [], [], 0.1)
                if not ready:
                    continue
                conn, _ = sock.accept()
            except (OSError, ValueError):
                if self._stop.is_set():
                    return
                continue
            with self._lock:
                self._conns.add(conn)
                self._threads = [t for t in self._threads if t.is_alive()]
                t = threading.Thread(target=self._serve, args=(conn,), name="sim-control-conn", daemon=True)
                self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([conn], [], [], 0.1)
                if not ready:
                    continue
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        conn.sendall((json.dumps(self.handle_line(line)) + "\n").encode())
                if len(buf) > MAX_REQUEST:
                    conn.sendall(b'{"ok": false, "error": "request line too long"}\n')
                    return
        except (OSError, ValueError):
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def handle_line(self, line: bytes) -> dict[str, Any]:
        try:
            req = json.loads(line)
        except ValueError as exc:
            return {"ok": False, "error": f"bad request: not JSON ({exc})"}
        if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
            return {"ok": False, "error": 'bad request: expected {"cmd": "...", ...}'}
        try:
            return {"ok": True, **self.handle(req)}
        except (SimError, ValueError, TypeError) as exc:
            return {"ok": False, "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
        except Exception as exc:  # never let one bad request kill the server
            return {"ok": False, "error": f"internal error: {exc!r}"}

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        cmd = req["cmd"]
        board = self.board
        if cmd == "status":
            return board.status()
        if cmd == "power":
            board.power(_flag(req, "on"))
            return {}
        if cmd == "reset":
            board.press_reset(boot=_flag(req, "boot", False))
            return {}
        if cmd == "sd":
            board.set_sd(_flag(req, "present"))
            return {}
        if cmd == "events":
            since = req.get("since", 0)
            if not isinstance(since, int) or isinstance(since, bool):
                raise ValueError("events: 'since' must be an integer")
            events = board.events.since(since)
            return {"events": events, "last": board.events.last_seq}
        if cmd == "fault":
            name = req.get("name")
            if not isinstance(name, str):
                raise ValueError("fault: 'name' must be a string")
            params = {k: v for k, v in req.items() if k not in ("cmd", "name")}
            return board.faults.command(name, params) or {}
        raise ValueError(f"unknown command {cmd!r} (known: status, power, reset, sd, events, fault)")

    def close(self) -> None:
        self._stop.set()
        self._binding.close()
        with self._lock:
            conns = list(self._conns)
            threads = list(self._threads)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in [self._accepter, *threads]:
            if t.is_alive():
                t.join(timeout=2.0)


def _flag(req: dict[str, Any], key: str, default: bool | None = None) -> bool:
    value = req.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{req['cmd']}: {key!r} must be true or false")
    return value


class ControlClient:
    """Talks to a simulator's control socket; one connection per call."""

    def __init__(self, path: Path | str, timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.timeout = timeout

    def call(self, cmd: str, **kw: Any) -> dict[str, Any]:
        """Send one request; returns the reply, raises SimError on ok:false, timeout or no server."""
        request = (json.dumps({"cmd": cmd, **kw}) + "\n").encode()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(connect_path(self.path))
            sock.sendall(request)
            buf = b""
            while b"\n" not in buf:
                data = sock.recv(65536)
                if not data:
                    raise SimError(f"simulator control socket {self.path} closed without a reply to {cmd!r}")
                buf += data
        except socket.timeout:
            raise SimError(f"simulator control socket {self.path}: no reply to {cmd!r} "
                           f"within {self.timeout} s") from None
        except (FileNotFoundError, ConnectionRefusedError):
            raise SimError(f"no simulator is listening on {self.path}") from None
        except OSError as exc:
            raise SimError(f"simulator control socket {self.path}: {exc.strerror or exc}") from None
        finally:
            sock.close()
        try:
            reply = json.loads(buf.split(b"\n", 1)[0])
        except ValueError:
            raise SimError(f"simulator control socket {self.path}: reply to {cmd!r} is not JSON") from None
        if not isinstance(reply, dict) or not reply.get("ok"):
            err = reply.get("error", "unknown error") if isinstance(reply, dict) else "bad reply"
            raise SimError(f"simulator {cmd!r} failed: {err}")
        return reply

    def status(self) -> dict[str, Any]:
        return self.call("status")

    def power(self, on: bool) -> dict[str, Any]:
        return self.call("power", on=bool(on))

    def reset(self, boot: bool = False) -> dict[str, Any]:
        return self.call("reset", boot=bool(boot))

    def sd(self, present: bool) -> dict[str, Any]:
        return self.call("sd", present=bool(present))

    def events(self, since: int = 0) -> list[dict[str, Any]]:
        return self.call("events", since=since)["events"]

    def fault(self, name: str, **params: Any) -> dict[str, Any]:
        return self.call("fault", name=name, **params)
