"""What the agent's answers carry, as frozen records (hil.agent.client makes them)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hello:
    agent: str
    proto: int
    board: str
    build: str
    heap_total: int
    heap_free: int
    line_max: int
    chunk_max: int
    kmodel_versions: tuple[int, ...]
    max_models: int
    flash_size: int
    files: bool


@dataclass(frozen=True)
class AgentMemory:
    heap_total: int
    heap_free: int          # what kpu_load_kmodel can still allocate from
    models: int
    model_bytes: int        # bytes of model buffers the agent holds


@dataclass(frozen=True)
class LoadedModel:
    id: int
    source: str             # the path, or the flash offset in hex
    version: int
    size: int               # bytes of the model buffer
    main_mem: int
    heap_free: int          # after the load

    def __str__(self) -> str:
        return f"model#{self.id}({self.source})"


@dataclass(frozen=True)
class FileStat:
    size: int
    sha256: str
