"""One simulated board with all its front ends: ``SimServer`` (in-process) and ``python -m k210sim serve``.

    with SimServer(state_dir, board="maix-bit", pace=False) as sim:
        sim.endpoints["pty"], sim.endpoints["rfc2217"], sim.control_path, sim.board

Start-up checks every input before anything is touched (board name, listen addresses,
firmware build), then takes the state directory's lock, opens flash/SD/config, writes the
requested build's image at flash 0 (or, for a brand-new state dir, the default build's),
opens the front ends and the control socket, and powers the board on. ``stop()`` undoes all of
it: threads joined, fds and sockets closed, the pty link and socket files removed, the lock
released. Any failure during start-up undoes what was done so far.
"""
from __future__ import annotations

import ipaddress
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from k210sim.board import SimBoard
from k210sim.boards import RESET_SETTLE_S, get_board
from k210sim.builds import DEFAULT_BUILD, load_build
from k210sim.errors import SimError
from k210sim.control import ControlServer
from k210sim.events import EventLog
from k210sim.faults import FaultHooks
from k210sim.firmware_image import boot_image, make_image
from k210sim.frontends.modem import ModemSocket
from k210sim.frontends.pty import PtyFrontEnd
from k210sim.frontends.rfc2217 import Rfc2217FrontEnd
from k210sim.frontends.tcp import TcpFrontEnd
from k210sim.program import ProgramFactory
from k210sim.storage import BoardStorage, StateDirLock
from k210sim.uart import SerialLine

Address = tuple[str, int]


def check_listen_address(addr: Address, listen_any: bool, what: str) -> None:
    host, port = addr
    if not 0 <= port <= 65535:
        raise SimError(f"{what}: port {port} out of range")
    if listen_any:
        return
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SimError(f"{what}: refusing to listen on {host}: not a loopback address (use --listen-any)")


class SimServer:
    def __init__(self, state_dir: Path | str, board: str = "maix-bit", build: str | None = None,
                 pty_link: Path | str | None = None, rfc2217: Address | None = ("127.0.0.1", 0),
                 tcp: Address | None = None, pace: bool = True, listen_any: bool = False,
                 program_factory: ProgramFactory | None = None,
                 reset_settle_s: float = RESET_SETTLE_S) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.board_name = board
        self.build = build
        self.pty_link = Path(pty_link).absolute() if pty_link is not None else self.state_dir / "ttyMAIX0"
        self.rfc2217_addr = rfc2217
        self.tcp_addr = tcp
        self.pace = pace
        self.listen_any = listen_any
        self.program_factory = program_factory
        self.reset_settle_s = reset_settle_s
        self.control_path = self.state_dir / "control.sock"
        self.modem_path = self.state_dir / "modem.sock"
        self.endpoints: dict[str, Any] = {}
        self.events = EventLog()
        self.faults = FaultHooks()
        self.board: SimBoard | None = None
        self.line: SerialLine | None = None
        self.storage: BoardStorage | None = None
        self._lock: StateDirLock | None = None
        self._closers: list[Any] = []
        self._started = False

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> SimServer:
        if self._started:
            return self
        try:
            spec = get_board(self.board_name)
        except KeyError as exc:
            raise SimError(str(exc.args[0])) from None
        for addr, what in ((self.rfc2217_addr, "rfc2217"), (self.tcp_addr, "tcp")):
            if addr is not None:
                check_listen_address(addr, self.listen_any, what)
        build = load_build(self.build) if self.build is not None else None
        try:
            self._start(spec, build)
        except BaseException:
            self.stop()
            raise
        self._started = True
        return self

    def _start(self, spec, build) -> None:
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SimError(f"cannot create state dir {self.state_dir}: {exc.strerror}") from None
        if not os.access(self.state_dir, os.W_OK | os.X_OK):
            raise SimError(f"state dir {self.state_dir} is not writable")
        self._lock = StateDirLock(self.state_dir)
        self._lock.acquire()
        try:
            self.storage = BoardStorage(self.state_dir, spec.flash_size, self.faults, sd_slot=spec.sd_slot)
        except OSError as exc:
            raise SimError(f"state dir {self.state_dir}: {exc.strerror or exc}") from None
        flash = self.storage.flash
        if flash.recovered:
            self.events.emit("flash-recovered", action=flash.recovered)
        if build is None and flash.created:
            build = load_build(DEFAULT_BUILD)
        if build is not None:
            flash.write(0, make_image(build))
            self.events.emit("flashed", build=build.name, source="start-up")
        boot = boot_image(flash)

        self.line = SerialLine(self.events, self.faults, pace=self.pace)
        self.board = SimBoard(spec, self.storage, self.line, self.events, self.faults, self.state_dir,
                              program_factory=self.program_factory, reset_settle_s=self.reset_settle_s)
        self.faults.board = self.board

        pty = PtyFrontEnd(self.line, self.pty_link)
        self._closers.append(pty)
        rfc = tcp = None
        if self.rfc2217_addr is not None:
            rfc = Rfc2217FrontEnd(self.line, self.board, *self.rfc2217_addr)
            self._closers.append(rfc)
        if self.tcp_addr is not None:
            tcp = TcpFrontEnd(self.line, *self.tcp_addr)
            self._closers.append(tcp)
        modem = ModemSocket(self.board, self.modem_path, drain=pty.drain)
        self._closers.append(modem)
        control = ControlServer(self.board, self.control_path)
        self._closers.append(control)
        for part in self._closers:
            part.start()

        before = self.events.last_seq
        self.board.power(True)
        # Ready means booted: the first boot follows power-on after the reset settle time.
        self.events.wait_for(lambda e: e["kind"] == "boot", since=before, timeout=2.0)
        self.endpoints = {
            "pty": str(self.pty_link), "pty_device": pty.device,
            "rfc2217": rfc.url if rfc else None, "tcp": tcp.url if tcp else None,
            "control": str(self.control_path), "modem": str(self.modem_path),
            "state": str(self.state_dir), "pid": os.getpid(), "board": spec.name,
            "build": boot.build if boot.ok else None,
            "image_size": boot.length + 5 + 32 if boot.ok and boot.length else None,
        }

    def stop(self) -> None:
        """Shut everything down; safe to call twice and after a failed start."""
        closers, self._closers = self._closers, []
        for part in reversed(closers):
            _quietly(part.close)
        if self.board is not None:
            _quietly(self.board.close)
        if self.line is not None:
            _quietly(self.line.close)
        if self.storage is not None:
            _quietly(self.storage.close)
            self.storage = None
        if self._lock is not None:
            _quietly(self._lock.release)
            self._lock = None
        self._started = False


def _quietly(fn) -> None:
    try:
        fn()
    except Exception as exc:  # shutdown must go on; say what failed
        print(f"k210sim: shutdown: {fn!r} failed: {exc}", file=sys.stderr)


# -- python -m k210sim serve ----------------------------------------------------------------------------
def parse_address(text: str | None, what: str) -> Address | None:
    """``HOST:PORT`` (``[v6]:PORT`` too) -> (host, port); "none"/"off" -> None."""
    if text is None or text.lower() in ("none", "off", ""):
        return None
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit():
        raise SimError(f"--{what}: expected HOST:PORT (e.g. 127.0.0.1:0), got {text!r}")
    return host, int(port)


def serve(args: Any) -> int:
    """Run one board until SIGTERM/SIGINT; print one JSON line when ready."""
    if args.pace not in ("line", "off"):
        raise SimError(f"--pace must be 'line' or 'off', got {args.pace!r}")
    server = SimServer(
        args.state, board=args.board, build=args.build,
        pty_link=args.pty, rfc2217=parse_address(args.rfc2217, "rfc2217"),
        tcp=parse_address(args.tcp, "tcp"), pace=args.pace == "line", listen_any=args.listen_any)
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.start()
        print(json.dumps(server.endpoints), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for s, handler in old.items():
            signal.signal(s, handler)
    return 0
