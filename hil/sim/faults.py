"""Fault injection hooks of the simulated board (filled in by the reliability work).

The board core calls these hooks at fixed points: every batch of bytes crossing the line in
each direction, and every flash write/erase. Today every hook is a no-op and the control
socket's ``{"cmd": "fault", "name": ...}`` answers ``unknown fault``. A fault is added by
registering a handler in ``FaultHooks.handlers`` (name -> callable(hooks, params) -> dict) that
changes the hooks' behaviour; nothing else in the core needs to change.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

from hil.errors import SimError

FaultHandler = Callable[["FaultHooks", dict[str, Any]], dict[str, Any]]


class FaultHooks:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.handlers: dict[str, FaultHandler] = {}
        self.board: Any = None        # the SimBoard, set by the server once it exists

    # -- hook points (no-ops until a fault is armed) ---------------------------------------
    def host_to_board(self, data: bytes) -> bytes:
        """Bytes from a client before they are paced onto the line."""
        return data

    def board_to_host(self, data: bytes) -> bytes:
        """Bytes from the board's UART after they crossed the line, before the clients."""
        return data

    def flash_write(self, addr: int, size: int) -> None:
        """Called before a flash write or erase is applied; may raise to fail it."""

    # -- control socket -------------------------------------------------------------------
    def command(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Arm or clear a fault; the reply's fields are merged into {"ok": true}."""
        handler = self.handlers.get(name)
        if handler is None:
            known = ", ".join(sorted(self.handlers)) or "none yet"
            raise SimError(f"unknown fault {name!r} (known: {known})")
        return handler(self, params)
