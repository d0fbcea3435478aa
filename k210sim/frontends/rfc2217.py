"""RFC 2217 front end: a telnet COM-port server on TCP, built on pyserial's PortManager.

PortManager speaks the protocol; it drives a duck-typed port object whose setters are our
hooks: ``baudrate`` (host-side baud of this front end), ``dtr``/``rts`` (timestamped, into the
board's reset state machine), ``break_condition`` (an event), and the 8N1 format settings
(recorded only). It reads ``cts``/``dsr``/``ri``/``cd``: a Maix board wires none of them, so they
read False.

When the client goes away, DTR and RTS are both deasserted, as the host's tty driver drops
them (HUPCL) when a real port is closed. One client at a time; a new one replaces the old
(k210sim.frontends.netbase).
"""
from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING

import serial
from serial import rfc2217

from k210sim.frontends.netbase import TcpServerFrontEnd
from k210sim.uart import SerialLine

if TYPE_CHECKING:
    from k210sim.board import SimBoard


class _Port:
    """The serial port PortManager believes it is driving."""

    def __init__(self, fe: Rfc2217FrontEnd) -> None:
        self._fe = fe
        self.bytesize = serial.EIGHTBITS
        self.parity = serial.PARITY_NONE
        self.stopbits = serial.STOPBITS_ONE
        self.rtscts = False
        self.xonxoff = False
        self.cts = self.dsr = self.ri = self.cd = False

    @property
    def baudrate(self) -> int:
        return self._fe.host_baud()

    @baudrate.setter
    def baudrate(self, value: int) -> None:
        value = int(value)
        if value <= 0:
            raise ValueError(f"bad baud rate {value}")
        self._fe.set_host_baud(value)

    @property
    def dtr(self) -> bool:
        return self._fe.board.dtr

    @dtr.setter
    def dtr(self, value: bool) -> None:
        self._fe.board.set_lines(dtr=bool(value), source=self._fe.name, t=time.monotonic())

    @property
    def rts(self) -> bool:
        return self._fe.board.rts

    @rts.setter
    def rts(self, value: bool) -> None:
        self._fe.board.set_lines(rts=bool(value), source=self._fe.name, t=time.monotonic())

    @property
    def break_condition(self) -> bool:
        return self._fe.break_on

    @break_condition.setter
    def break_condition(self, value: bool) -> None:
        self._fe.break_on = bool(value)
        self._fe.line.events.emit("break", on=bool(value), source=self._fe.name)

    def reset_input_buffer(self) -> None:
        pass  # board output goes straight to the socket: nothing is held here to purge

    def reset_output_buffer(self) -> None:
        pass


class _Conn:
    """The ``write()`` PortManager needs, serialised with board output."""

    def __init__(self, fe: Rfc2217FrontEnd, sock: socket.socket) -> None:
        self._fe = fe
        self._sock = sock

    def write(self, data: bytes) -> None:
        self._fe.write_raw(self._sock, data)


class Rfc2217FrontEnd(TcpServerFrontEnd):
    name = "rfc2217"
    url_scheme = "rfc2217"

    def __init__(self, line: SerialLine, board: SimBoard, host: str, port: int) -> None:
        super().__init__(line, host, port)
        self.board = board
        self.break_on = False
        self._managers: dict[int, rfc2217.PortManager] = {}

    def set_host_baud(self, baud: int) -> None:
        changed = baud != self._baud
        self._baud = baud
        if changed:
            self.line.note_host_baud(self.name, baud)

    def encode(self, data: bytes) -> bytes:
        return data.replace(b"\xff", b"\xff\xff")   # telnet IAC doubling, as PortManager.escape

    def on_connect(self, conn: socket.socket) -> None:
        self.break_on = False
        self._managers[id(conn)] = rfc2217.PortManager(_Port(self), _Conn(self, conn))

    def on_data(self, conn: socket.socket, data: bytes) -> None:
        pm = self._managers[id(conn)]
        if pm.mode == rfc2217.M_NORMAL and pm.suboption is None and b"\xff" not in data:
            payload = data   # fast path: plain data, the telnet state machine is idle
        else:
            payload = b"".join(pm.filter(data))
        if payload:
            self.line.from_host(payload, self)
        pm.check_modem_lines()

    def _serve(self, conn: socket.socket) -> None:
        try:
            super()._serve(conn)
        finally:
            self._managers.pop(id(conn), None)

    def on_disconnect(self) -> None:
        if self.break_on:
            self.break_on = False
            self.line.events.emit("break", on=False, source=self.name)
        self.board.set_lines(dtr=False, rts=False, source=f"{self.name}-close", t=time.monotonic())
