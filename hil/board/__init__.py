"""The board: an opened rig (hil.board.board.Board) and the one owner of its state.

- ``board``: Board opens the link, the power driver and (for sim rigs) the simulator, and
  wires the firmware flavour's console to the lifecycle;
- ``lifecycle`` (with ``recovery`` and ``isp``): the only code that resets, reflashes, waits for
  a boot or climbs the recovery ladder;
- ``state``: the states and the ``rebooted(cause)``/``reconnected()`` event;
- ``simprocess``: the simulator as a child process, for sim rigs.

``from hil.board import Board`` works; the name is resolved on first use, so the modules below
(which the REPL imports for the event types) never import the whole board.
"""
from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "Board":
        from hil.board.board import Board
        return Board
    raise AttributeError(f"module 'hil.board' has no attribute {name!r}")
