"""C-SDK firmware with the k210-hil agent (agent/): the agent's protocol client over the board's
link, its boot console for the lifecycle, and the agent device. No MicroPython REPL."""
from __future__ import annotations

from typing import Any

from hil.agent.client import AgentClient
from hil.board.state import BoardEvents
from hil.console import Console
from hil.device.agent.boot import AgentBoot
from hil.device.agent.device import AgentDevice
from hil.device.flavours import FLAVOURS


@FLAVOURS.register
class Csdk:
    name = "csdk"
    repl = None

    def __init__(self, rig: Any, console: Console, events: BoardEvents) -> None:
        self.rig = rig
        link = console.link
        self.client = AgentClient(link, name=f"rig {rig.name}", note=link.note,
                                  timeout=max(5.0, rig.serial.boot_timeout))
        self.boot = AgentBoot(self.client, console, events, rig.name)

    def device(self, lifecycle: Any) -> AgentDevice:
        return AgentDevice(lifecycle, self.client, self.boot, self.rig)
