"""Helpers for the tests of the agent under QEMU: one emulated board with a connected client.

``AgentBoard`` starts the reference firmware (built or taken from the cache), connects a
``hil.link.Link`` to its console and an ``AgentClient`` over it, and reconnects after power
events. Tests skip with the apt command when the toolchain or QEMU is missing.
"""
from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest

from hil.agent.build import APT_HINT as GCC_HINT, CC, Firmware, build_reference
from hil.agent.client import AgentClient, Hello
from hil.agent.qemu import APT_HINT as QEMU_HINT, QEMU, QemuBoard
from hil.link import Link, SerialLog

BOOT_TIMEOUT = 10.0


def need_tools() -> None:
    if shutil.which(CC) is None:
        pytest.skip(f"{CC} not installed ({GCC_HINT})")
    if shutil.which(QEMU) is None:
        pytest.skip(f"{QEMU} not installed ({QEMU_HINT})")


@functools.lru_cache(maxsize=None)
def firmware() -> Firmware:
    need_tools()
    return build_reference()


class AgentBoard:
    def __init__(self, state: Path, log: Path | None = None) -> None:
        fw = firmware()
        self.firmware = fw
        self.notes: list[str] = []
        self.qemu = QemuBoard(fw.elf, state, note=self.notes.append, flash_image=fw.bin)
        self.log = SerialLog(log, "qemu-agent") if log is not None else None
        self.link: Link | None = None
        self.client: AgentClient | None = None
        self.hello: Hello | None = None

    def start(self) -> AgentClient:
        self.qemu.start()
        return self.connect()

    def connect(self) -> AgentClient:
        """A fresh link and client to the running emulator, answering HELLO."""
        if self.link is not None:
            self.link.close()
        self.link = Link(self.qemu.url, log=self.log)
        self.client = AgentClient(self.link, name="qemu-agent", note=self.notes.append)
        self.hello = self.client.wait_ready(BOOT_TIMEOUT)
        return self.client

    def ensure(self) -> AgentClient:
        """The client, after reconnecting or restarting whatever a test left broken."""
        if not self.qemu.running:
            self.qemu.start()
            return self.connect()
        try:
            assert self.client is not None and self.link is not None and not self.link.lost
            self.client.hello()
        except Exception:       # noqa: BLE001 - any breakage: reconnect, then reset if that fails
            try:
                return self.connect()
            except Exception:   # noqa: BLE001
                self.qemu.reset()
                return self.connect()
        return self.client

    def close(self) -> None:
        if self.link is not None:
            self.link.close()
        self.qemu.stop()
