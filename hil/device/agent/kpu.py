"""The KPU driver of the agent: LOAD FILE/FLASH, DEINIT. No forward: the agent runs no models.

Load failures come from the client typed already (KpuLoadError / MemoryOverflow, the agent's
status line as the text, its code); a reboot drops every handle.
"""
from __future__ import annotations

from hil.agent.client import AgentClient
from hil.board.state import BoardEvents
from hil.device.api import KpuDriver, KpuHandle, Unsupported
from hil.errors import KpuError, KpuLoadError
from hil.steps import Steps

NO_FORWARD = ("the k210-hil agent loads and frees models but does not run them (no FORWARD request; "
              "under QEMU there is no KPU to run them on)")


class AgentKpu(KpuDriver):
    def __init__(self, client: AgentClient, events: BoardEvents, steps: Steps) -> None:
        self.client = client
        self.steps = steps
        self._loaded: dict[int, KpuHandle] = {}
        events.subscribe(self)

    def load(self, source: str | int, timeout: float = 120.0) -> KpuHandle:
        if isinstance(source, bool) or not isinstance(source, (str, int)):
            raise TypeError(f"kpu load takes a path or a flash offset, not {source!r}")
        model = source if isinstance(source, str) else f"{source:#x}"
        with self.steps("kpu load", model=model) as step:
            try:
                if isinstance(source, str):
                    loaded = self.client.load_file(source, timeout)
                else:
                    loaded = self.client.load_flash(source, timeout=timeout)
            except KpuLoadError as exc:
                step.args["error"] = exc.text
                raise
        handle = KpuHandle(loaded.id, model)
        self._loaded[handle.id] = handle
        return handle

    def deinit(self, handle: KpuHandle, keep_task: bool = False, timeout: float = 30.0) -> str:
        with self.steps("kpu deinit", model=handle.model):
            try:
                free = self.client.deinit(handle.id)
            except KpuLoadError as exc:       # 2001 PARAM: no model with this id
                raise KpuError(exc.text, exc.exc_type, "DEINIT") from None
        self._loaded.pop(handle.id, None)
        return f"freed, heap_free={free}"

    def forward(self, handle: KpuHandle, data: list[float], timeout: float = 30.0) -> str:
        raise Unsupported(NO_FORWARD)

    def drop(self, handle: KpuHandle) -> None:
        self._loaded.pop(handle.id, None)

    def deinit_all(self) -> int:
        freed = self.client.deinit_all()
        self._loaded.clear()
        return freed
