"""Raw TCP front end for ``socket://`` URLs: bytes in, bytes out, no telnet escaping.

A raw socket carries no baud rate, so this port behaves like ser2net's raw port: its host
side is fixed at ``baud`` (default 115200). If the board switches its UART to another rate,
a raw-TCP client sees garbage, as it would through ser2net. Use the pty or RFC 2217 for
transfers at a fast baud. One client at a time; a new client replaces the old one.
"""
from __future__ import annotations

from k210sim.frontends.netbase import TcpServerFrontEnd
from k210sim.uart import DEFAULT_BAUD, SerialLine


class TcpFrontEnd(TcpServerFrontEnd):
    name = "tcp"
    url_scheme = "socket"

    def __init__(self, line: SerialLine, host: str, port: int, baud: int = DEFAULT_BAUD) -> None:
        super().__init__(line, host, port)
        self.initial_baud = self._baud = baud
