"""micropython: const, kbd_intr, mem_info, qstr_info, stack_use, heap_lock, opt_level...

``kbd_intr(c)`` sets the interrupt character for the code now running (-1 disables it, so
Ctrl-C bytes reach sys.stdin); as in MicroPython, every new REPL command starts with Ctrl-C again.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from k210sim.maixpy.modules import module

if TYPE_CHECKING:
    from k210sim.maixpy.runtime import Runtime

STACK_SIZE = 15360


def build(rt: "Runtime", name: str):
    state = {"opt": 0, "locked": 0}

    def const(x: Any) -> Any:
        return x

    def kbd_intr(ch: Any) -> None:
        ch = int(ch)
        with rt.native():
            rt.set_interrupt_char(ch if 0 <= ch <= 255 else None)

    def mem_info(verbose: Any = None) -> None:
        total = rt.gc.size
        used = rt.gc.mem_alloc()
        free = total - used
        rt.write_text(
            "stack: %d out of %d\n" % (736, STACK_SIZE)
            + "GC: total: %d, used: %d, free: %d\n" % (total, used, free)
            + " No. of 1-blocks: %d, 2-blocks: %d, max blk sz: %d, max free sz: %d\n"
            % (used // 64, used // 256, 64, free // 16))

    def qstr_info(verbose: Any = None) -> None:
        rt.write_text("qstr pool: n_pool=1, n_qstr=123, n_str_data_bytes=1234, "
                      "n_total_bytes=4567\n")

    def stack_use() -> int:
        return 736

    def opt_level(level: Any = None) -> Any:
        if level is None:
            return state["opt"]
        state["opt"] = int(level)
        return None

    def heap_lock() -> None:
        state["locked"] += 1

    def heap_unlock() -> None:
        state["locked"] = max(state["locked"] - 1, 0)

    def alloc_emergency_exception_buf(size: Any) -> None:
        return None

    def schedule(func: Any, arg: Any) -> None:
        func(arg)

    return module(name, const=const, kbd_intr=kbd_intr, mem_info=mem_info, qstr_info=qstr_info,
                  stack_use=stack_use, opt_level=opt_level, heap_lock=heap_lock,
                  heap_unlock=heap_unlock,
                  alloc_emergency_exception_buf=alloc_emergency_exception_buf,
                  schedule=schedule)
