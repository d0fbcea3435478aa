"""KPU (``import KPU as kpu``): load, load_flash, deinit, set_outputs, forward, memtest.

The decisions and texts are in hil.sim.maixpy.kpu (KpuCore); this module is the Python face.
``forward(task, data)`` takes a list of numbers (no camera image is simulated) and returns a
deterministic list of floats (the shape given by set_outputs, else 10 values).
``load``/``load_flash`` first ask the fault hooks (``ctx.faults.kpu_load``, as the stream
watcher of hil.sim.faults counts both): an armed brownout resets the chip right there, so the
program stops inside the load.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hil.sim.maixpy.kpu import KpuError, KpuNet
from hil.sim.maixpy.modules import module
from hil.sim.maixpy.mperrors import oserror_from_text
from hil.sim.program import ProgramHalted

if TYPE_CHECKING:
    from hil.sim.maixpy.runtime import Runtime

BROWNOUT_WAIT_S = 10.0   # how long kpu.load waits for the board to halt it after a brownout


def build(rt: "Runtime", name: str):
    core = rt.board.kpu
    missing = rt.profile.errors.missing_file

    def read_file(path: str) -> bytes:
        try:
            _, _, host = rt.vfs.resolve(path)
            if host is None or not host.is_file():
                raise OSError()
            return host.read_bytes()
        except OSError:
            raise oserror_from_text(missing) from None

    def call(fn: Any, *args: Any) -> Any:
        with rt.native():
            try:
                return fn(*args)
            except KpuError as exc:
                err = exc.exc
        raise err

    def brownout(source: Any) -> None:
        faults = rt.ctx.faults
        if faults is not None and faults.kpu_load(source):
            # brownout_kpu_load: the chip resets inside the load; nothing after it runs
            with rt.native():
                rt.cpu.sleep(BROWNOUT_WAIT_S, interruptible=False)
            raise ProgramHalted()

    def load(source: Any) -> KpuNet:
        brownout(source)
        net = call(core.load, source, read_file)
        rt.gc.note_garbage(64)
        return net

    def load_flash(addr: Any, is_dual_buf: Any, batch_size: Any, spi_speed: Any) -> KpuNet:
        brownout(addr)
        return call(core.load_flash, addr, is_dual_buf, batch_size, spi_speed)

    def deinit(task: Any) -> bool:
        return call(core.deinit, task)

    def set_outputs(task: Any, idx: Any, w: Any, h: Any, ch: Any) -> bool:
        return call(core.set_outputs, task, idx, w, h, ch)

    def forward(task: Any, img: Any, out_index: int = 0, dma: int = -1) -> list:
        return call(core.forward, task, img, out_index)

    def memtest() -> None:
        free_gc = rt.gc.largest_free()
        rt.write_text(core.memtest_lines(free_gc))

    return module(name, load=load, load_flash=load_flash, deinit=deinit,
                  set_outputs=set_outputs, forward=forward, memtest=memtest)
