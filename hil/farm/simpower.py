"""The simulated board's power as a network power switch that labgrid already drives.

labgrid's ``NetworkPowerPort`` with ``model: rest`` switches a port with ``PUT <url>`` (body
``1`` or ``0``) and reads it with ``GET <url>`` (answer ``1`` or ``0``). This module serves that
protocol on 127.0.0.1 for one simulated board and turns each request into a call on the
simulator's control socket, so a labgrid exporter can export a simulator's power like any PDU:

    NetworkPowerPort:
      model: rest
      host: "http://127.0.0.1:PORT/power/{index}"
      index: 0

    python -m hil.farm.simpower --control STATE/control.sock [--listen 127.0.0.1:0]

prints one JSON line ``{"url": "http://127.0.0.1:PORT/power/{index}", "pid": N}`` when ready and
serves until SIGTERM/SIGINT. Index 0 is the board; any other index is a 404. ``POST
/reset/0`` presses the reset button (not used by labgrid; handy with curl).
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hil.errors import HilError, SimError

MAX_BODY = 64


def _check_loopback(host: str, port: int, listen_any: bool) -> None:
    if not 0 <= port <= 65535:
        raise SimError(f"simpower --listen: port {port} out of range")
    if listen_any or host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SimError(f"simpower --listen: refusing to listen on {host}: not a loopback address "
                       "(use --listen-any)")


class SimPowerHttp:
    """The HTTP power switch for one simulator; ``start()`` / ``stop()``; ``url`` once started."""

    def __init__(self, control: Path | str, host: str = "127.0.0.1", port: int = 0,
                 listen_any: bool = False) -> None:
        from hil.simcontrol import SimControl
        _check_loopback(host, port, listen_any)
        self.control = Path(control)
        self.client_factory = lambda: SimControl(self.control)
        self.host = host
        self.port = port
        self.server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self.server is None:
            return ""
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/power/{{index}}"

    def start(self) -> "SimPowerHttp":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:   # quiet: errors are answered
                pass

            def _reply(self, code: int, text: str) -> None:
                body = (text + ("" if text.endswith("\n") or code == 200 else "\n")).encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _index(self, prefix: str) -> bool:
                if self.path.rstrip("/") != f"/{prefix}/0":
                    self._reply(404, f"no such port {self.path!r}: this switch has one, /{prefix}/0")
                    return False
                return True

            def _call(self, fn) -> Any:
                try:
                    return fn(owner.client_factory())
                except HilError as exc:
                    self._reply(502, f"simulator control socket {owner.control}: {exc}")
                    return None

            def do_GET(self) -> None:   # noqa: N802 - http.server's naming
                if not self._index("power"):
                    return
                status = self._call(lambda c: c.status())
                if status is not None:
                    self._reply(200, "1" if status.get("power") else "0")

            def do_PUT(self) -> None:   # noqa: N802
                if not self._index("power"):
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, MAX_BODY)).strip() if length else b""
                if body not in (b"0", b"1"):
                    self._reply(400, f"body must be 1 (on) or 0 (off), got {body[:20]!r}")
                    return
                if self._call(lambda c: c.power(body == b"1")) is not None:
                    self._reply(200, body.decode())

            def do_POST(self) -> None:   # noqa: N802
                if not self._index("reset"):
                    return
                if self._call(lambda c: c.reset()) is not None:
                    self._reply(200, "1")

        try:
            self.server = ThreadingHTTPServer((self.host, self.port), Handler)
        except OSError as exc:
            raise SimError(f"simpower: cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="hil-simpower", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> "SimPowerHttp":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.farm.simpower",
                                     description="Serve a simulated board's power as labgrid's 'rest' "
                                                 "power switch model.")
    parser.add_argument("--control", required=True, help="the simulator's control socket (STATE/control.sock)")
    parser.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                        help="address to serve on (default 127.0.0.1:0, any free port)")
    parser.add_argument("--listen-any", action="store_true", help="allow a non-loopback address")
    args = parser.parse_args(argv)
    host, sep, port = args.listen.rpartition(":")
    if not sep or not host or not port.isdigit():
        print(f"simpower: --listen: expected HOST:PORT, got {args.listen!r}", file=sys.stderr)
        return 2
    if not Path(args.control).exists():
        print(f"simpower: --control: no such socket {args.control}", file=sys.stderr)
        return 2
    stop = threading.Event()
    old = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        switch = SimPowerHttp(args.control, host.strip("[]"), int(port), args.listen_any).start()
    except HilError as exc:
        print(f"simpower: {exc}", file=sys.stderr)
        return 2
    try:
        print(json.dumps({"url": switch.url, "pid": os.getpid()}), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        switch.stop()
        for s, handler in old.items():
            signal.signal(s, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
