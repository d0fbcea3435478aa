"""The device API over the k210-hil agent (C-SDK firmware): memory from MEM, files through the
firmware's file hooks (PUT/READ/STAT/RM/LS/TRUNC), the flash through FREAD/FSHA/FPUT.

What differs from MicroPython, said where a suite meets it: no interpreter heap (``gc_free`` is
None, ``gc_heap_size`` Unsupported), no /flash file system, no kpu.forward (``features``). Files
are written whole or not at all (the agent commits a file at END, after its sha256 matched), and
directories are implicit (``mkdir`` has nothing to do). A model of a given size for memory tests
is its lead uploaded and the file grown with TRUNC (``write_sized``): the loader allocates from
the header, so the memory error sees the full model; the sha256 is the board's, not the full
model's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hil.agent.client import AgentClient
from hil.device.agent.kpu import NO_FORWARD, AgentKpu
from hil.device.api import Device, Memory, Progress, Unsupported
from hil.kmodel.lead import flash_lead

WHY_NOT = {
    "repl": "the C-SDK firmware has no MicroPython REPL: the k210-hil agent speaks a line protocol",
    "gc_heap": "the C-SDK firmware has no interpreter (GC) heap: models and everything else share one malloc heap",
    "flash_files": "the C-SDK firmware has no file system on the SPI flash: models go there at an offset (FPUT)",
    "kpu_forward": NO_FORWARD,
}


class AgentDevice(Device):
    features = frozenset()

    def __init__(self, lifecycle: Any, client: AgentClient, boot: Any, rig: Any) -> None:
        self.lifecycle = lifecycle
        self.client = client
        self.boot = boot
        self.rig = rig
        self.steps = lifecycle.steps
        self.kpu = AgentKpu(client, lifecycle.events, self.steps)

    def why_not(self, feature: str) -> str:
        return WHY_NOT.get(feature) or super().why_not(feature)

    # -- memory --------------------------------------------------------------------------------
    def memory(self) -> Memory:
        return Memory(None, self.client.memory().heap_free)

    def gc_heap_size(self) -> int:
        raise Unsupported(WHY_NOT["gc_heap"])

    def set_gc_heap_size(self, size: int) -> int:
        raise Unsupported(WHY_NOT["gc_heap"])

    # -- files ---------------------------------------------------------------------------------
    def put(self, local: Path | str | bytes, remote: str, progress: Progress | None = None) -> str:
        data = local if isinstance(local, bytes) else Path(local).read_bytes()
        with self.steps("put", path=remote):
            sha = self.client.put(remote, data)
        if progress is not None:
            progress(len(data), len(data))
        return sha

    def get(self, remote: str, local: Path | str | None = None, progress: Progress | None = None) -> bytes:
        with self.steps("get", path=remote):
            data = self.client.get(remote)
        if local is not None:
            tmp = Path(f"{local}.part")
            tmp.write_bytes(data)
            tmp.replace(local)
        if progress is not None:
            progress(len(data), len(data))
        return data

    def sha256(self, remote: str) -> str:
        return self.client.stat(remote).sha256

    def exists(self, path: str) -> bool:
        return self.client.exists(path)

    def size(self, path: str) -> int:
        return self.client.stat(path).size

    def remove(self, path: str, missing_ok: bool = False) -> None:
        self.client.remove(path, missing_ok)

    def listdir(self, path: str = "/") -> list[str]:
        """Names directly under ``path`` (files, and directories implied by deeper paths)."""
        prefix = path.rstrip("/") + "/"
        names = {p[len(prefix):].split("/", 1)[0] for p in self.client.listdir() if p.startswith(prefix)}
        return sorted(names)

    def mkdir(self, path: str, exist_ok: bool = True) -> None:
        """Nothing to do: the agent's file store makes a file's directories with it."""

    def sd_present(self) -> bool:
        hello = self.boot.hello or self.client.hello()
        return hello.files

    # -- flash ---------------------------------------------------------------------------------
    def flash_read(self, offset: int, n: int) -> bytes:
        return self.client.flash_read(offset, n)

    def flash_sha256(self, offset: int, n: int) -> str:
        return self.client.flash_sha256(offset, n)

    def flash_write(self, offset: int, data: bytes) -> None:
        with self.steps("flash write", offset=offset, size=len(data)):
            self.client.flash_write(offset, data)

    # -- models of a size ------------------------------------------------------------------------
    def write_sized(self, path: str, recipe: Any) -> str:
        """The model's lead (header, tables, first layer: hil.kmodel.lead), grown to its size."""
        from hil.kmodel.fixtures import make
        model = make(recipe)
        lead = flash_lead(model)
        with self.steps("sized model", path=path, size=len(model)):
            self.client.put(path, lead)
            if len(model) > len(lead):
                self.client.truncate(path, len(model))
            return self.client.stat(path).sha256
