"""A client of the simulated board's control socket, as a network power switch's client would be.

The simulator (package k210sim, started as ``python -m k210sim serve``) serves JSON lines on a
unix socket, ``<state>/control.sock``: one request line, one reply line. This module speaks that
wire protocol itself and imports nothing of the simulator:

    {"cmd": "status"}                      -> {"ok": true, "power": bool, "mode": str, ...}
    {"cmd": "power", "on": bool}           -> {"ok": true}
    {"cmd": "reset", "boot": bool}         -> {"ok": true}     (reset button, BOOT held or not)
    {"cmd": "sd", "present": bool}         -> {"ok": true}
    any failure                            -> {"ok": false, "error": "one line"}

Unix socket paths are limited to 107 bytes; the simulator then serves from a short directory
and leaves a symlink at the long path, which we resolve before connecting.
"""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from hil.errors import SimError

MAX_UNIX_PATH = 107


def _connect_path(path: Path) -> str:
    text = os.fspath(path)
    if len(os.fsencode(text)) > MAX_UNIX_PATH:
        text = os.path.realpath(text)
    return text


class SimControl:
    """One request per connection; every failure is a SimError naming the socket."""

    def __init__(self, path: Path | str, timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.timeout = timeout

    def call(self, cmd: str, **kw: Any) -> dict[str, Any]:
        request = (json.dumps({"cmd": cmd, **kw}) + "\n").encode()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        buf = b""
        try:
            sock.connect(_connect_path(self.path))
            sock.sendall(request)
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
