"""The simulated K210 board: a serial device reached through a pty, RFC 2217 or raw TCP.

Modules: uart (byte-stream core), pacing, program (what the CPU runs), storage (flash, /flash,
/sd, config), firmware_image, board (power, reset/boot, CPU thread), frontends/, control
(control socket), events, faults, server (SimServer, ``hil sim serve``). The MaixPy firmware
lives in k210sim.maixpy and the ISP ROM in k210sim.isp.target.

This package file imports nothing, so emulated firmware can import k210sim.program or
k210sim.uart without pulling in the server.
"""
from __future__ import annotations

from typing import Any

__all__ = ["SimServer", "ControlClient"]


def __getattr__(name: str) -> Any:
    if name == "SimServer":
        from k210sim.server import SimServer
        return SimServer
    if name == "ControlClient":
        from k210sim.control import ControlClient
        return ControlClient
    raise AttributeError(f"module 'k210sim' has no attribute {name!r}")
