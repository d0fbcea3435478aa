"""What the Kendryte SDK prints on its own: LOGE/LOGW lines and the CPU fault dump.

Sources (sipeed/kendryte-standalone-sdk@7fdb511fe, the submodule of MaixPy-v1@973361c0d):
- lib/utils/include/syslog.h l.82-126: ``LOG_FORMAT(letter, format)`` is
  ``LOG_COLOR_<letter> "<letter> (%lu) %s: " format LOG_RESET_COLOR "\\n"`` with
  ``read_cycle()`` as %lu; MaixPy builds with CONFIG_LOG_ENABLE=1, CONFIG_LOG_COLORS=1 and
  LOG_KERNEL=1 (MaixPy-v1@973361c0d components/kendryte_sdk/CMakeLists.txt l.85-88), so the
  lines go through printk, straight to UARTHS (no "\\n" -> "\\r\\n" translation).
- lib/bsp/syscalls.c: handle_fault_load/handle_fault_store (l.657-733) call dump_core() then
  sys_exit(1337), which logs a warning and spins for ever (l.124-132).
- lib/bsp/include/dump.h dump_core() (l.30-132): "core dump: %s", "Cause 0x%016lx, EPC 0x%016lx",
  16 lines of integer registers, then 16 lines of FP registers with a "%f". The SDK's printk
  (lib/bsp/printf.c tfp_format l.298-530) has no %f: it prints nothing and does not consume the
  argument, so the next "%02d" prints the float's bits and the "%s" after it dereferences the
  register number as a pointer: a second load fault inside the handler. The dump therefore stops
  after "freg[00](ft0 ) = 0x0000000000000000(), freg[00](" and starts again; what the nested
  traps print after that, and when the stack gives out, is UNCONFIRMED: the simulator prints the
  second "core dump" header and then the board hangs until a reset.
"""
from __future__ import annotations

import time

CPU_HZ = 403_000_000         # [MAIXPY] cpu:freq:403000000 (maixpy_main.c l.689): mcycle's rate
CAUSE_FAULT_LOAD = 5         # lib/bsp/include/encoding.h l.880
CAUSE_FAULT_STORE = 7
RED, BROWN, RESET = "\x1b[0;31m", "\x1b[0;33m", "\x1b[0m"
REG_NAMES = ("zero ", "ra   ", "sp   ", "gp   ", "tp   ", "t0   ", "t1   ", "t2   ", "s0/fp",
             "s1   ", "a0   ", "a1   ", "a2   ", "a3   ", "a4   ", "a5   ", "a6   ", "a7   ",
             "s2   ", "s3   ", "s4   ", "s5   ", "s6   ", "s7   ", "s8   ", "s9   ", "s10  ",
             "s11  ", "t3   ", "t4   ", "t5   ", "t6   ")


class CycleClock:
    """read_cycle(): cycles since the chip left reset."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def cycles(self) -> int:
        return int((time.monotonic() - self.t0) * CPU_HZ)


def log_line(clock: CycleClock, letter: str, tag: str, message: str) -> bytes:
    color = {"E": RED, "W": BROWN}.get(letter, "")
    reset = RESET if color else ""
    return f"{color}{letter} ({clock.cycles()}) {tag}: {message}{reset}\n".encode()


def sbrk_out_of_memory(clock: CycleClock) -> bytes:
    """syscalls.c sys_brk l.186: the line a failed malloc prints before the 2006 error."""
    return log_line(clock, "E", "SYSCALL", "Out of memory\r\n")


def core_dump(clock: CycleClock, reason: str, cause: int, epc: int, regs: dict[int, int]) -> bytes:
    """dump_core() + the nested fault its "%f" causes (see the module docstring)."""
    out = [f"core dump: {reason}\r\n", f"Cause 0x{cause:016x}, EPC 0x{epc:016x}\r\n"]
    for i in range(16):
        a, b = 2 * i, 2 * i + 1
        out.append(f"reg[{a:02d}]({REG_NAMES[a]}) = 0x{regs.get(a, 0):016x}, "
                   f"reg[{b:02d}]({REG_NAMES[b]}) = 0x{regs.get(b, 0):016x}\r\n")
    out.append("freg[00](ft0 ) = 0x0000000000000000(), freg[00](")
    out.append(f"core dump: {reason}\r\n")
    return "".join(out).encode()
