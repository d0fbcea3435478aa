"""MaixPy v0.6.x running on the simulated K210: boot log, _boot.py, boot.py/main.py, REPL.

What the board prints (maixpy_main.c and builtin_py/_boot.py of sipeed/MaixPy-v1 v0.6.2, and the
real log in facts/maixpy.md), every line ending "\\r\\n":
    (empty line) [MAIXPY] Pll0..Pll2, cpu and kpu frequencies, [MAIXPY] Flash:<profile flash_id>
    [MaixPy] gc heap=0x...-0x...(<configured GC heap size>)           <- again at each soft reset
    [MaixPy] init end                                                 <- _boot.py
    (200 x sleep_ms(1): a Ctrl-C here stops _boot.py with a KeyboardInterrupt traceback and
     boot.py/main.py are skipped)
    (empty line) the MAIXPY ASCII banner, Official Site/Wiki lines, (empty line)
    boot.py output, then main.py output (main.py only when the REPL is in friendly mode)
    MicroPython <version> on <date>; Sipeed_M1 with kendryte-k210 / Type "help()" ... / ">>> "
boot.py and main.py run from the current directory _boot.py chose: /sd when a card is mounted,
else /flash; so with a card /sd/boot.py and /sd/main.py run *instead of* the /flash ones
(confirmed by _boot.py's os.chdir and maixpy_main.c's pyexec_file_if_exists("boot.py"); this
settles the UNCONFIRMED point of facts/maixpy.md). Tracebacks name them "boot.py"/"main.py".
_boot.py's other duties are not emulated: it does not write a default main.py showing the LCD
welcome screen (there is no LCD), and the IDE/cover.*.py handling is absent.

Soft reset (Ctrl-D in the friendly REPL, or on an empty raw REPL program): the finalisers run
(``kpu_net __del__`` for every task), then ``SOFT_REBOOT_TEXT`` - "[MaixPy]: soft reboot\\r\\n",
the text in maixpy_main.c (the facts' "MPY: soft reboot" guess is MicroPython's stm32 text; the
MaixPy source is authoritative, and mpremote only waits for "soft reboot\\r\\n") - and the
soft-boot part of the log again; the REPL stays in the mode it was in (raw after a raw-REPL
Ctrl-D, as MicroPython does).
"""
from __future__ import annotations

import time
from typing import Any

from hil.errors import SimError
from hil.sim.maixpy.console import Console
from hil.sim.maixpy.cpu import Cpu
from hil.sim.maixpy.kpu import KpuCore
from hil.sim.maixpy.memory import MemoryLayout, SystemHeap
from hil.sim.maixpy.repl import Repl
from hil.sim.maixpy.runtime import Runtime
from hil.sim.program import ProgramHalted

SOFT_REBOOT_TEXT = "[MaixPy]: soft reboot\r\n"
CLOCK_LINES = (
    "[MAIXPY] Pll0:freq:806000000",
    "[MAIXPY] Pll1:freq:398666666",
    "[MAIXPY] Pll2:freq:45066666",
    "[MAIXPY] cpu:freq:403000000",
    "[MAIXPY] kpu:freq:398666666",
)
BOOT_BANNER = r"""
 __  __              _____  __   __  _____   __     __
|  \/  |     /\     |_   _| \ \ / / |  __ \  \ \   / /
| \  / |    /  \      | |    \ V /  | |__) |  \ \_/ /
| |\/| |   / /\ \     | |     > <   |  ___/    \   /
| |  | |  / ____ \   _| |_   / . \  | |         | |
|_|  |_| /_/    \_\ |_____| /_/ \_\ |_|         |_|

Official Site : https://www.sipeed.com
Wiki          : https://maixpy.sipeed.com
"""
BOOT_WAIT_S = 0.2            # _boot.py: for i in range(200): time.sleep_ms(1)
BOOT_WAIT_LINE = 18          # ... the line of that sleep in v0.6.2's _boot.py
REBOOT_WAIT_S = 10.0         # machine.reset(): how long we wait for the board to halt us


class MaixPyFirmware:
    """The SimProgram for a MaixPy image: ``run()`` in the board's CPU thread, ``halt()``."""

    def __init__(self, ctx: Any, profile: Any) -> None:
        if profile.sim is None:
            raise SimError(f"firmware profile {profile.name!r} has no [sim] table: "
                           "it cannot run on the simulated board")
        self.ctx = ctx
        self.profile = profile
        self.cpu = Cpu()
        self.console = Console(ctx.uart, self.cpu)
        self.boot_monotonic = time.monotonic()
        self.reset_cause = 0
        self.mode = "friendly"
        self.sd_mounted = bool(ctx.storage.sd_present and ctx.storage.sd_root is not None)
        self.layout = MemoryLayout(profile.sim.runtime_ram, profile.sim.boot_sys_alloc,
                                   self.configured_gc_heap())
        self.sysheap = SystemHeap(self.layout.sys_total)
        flash = ctx.storage.flash
        self.kpu = KpuCore(profile, self.sysheap, flash.read, flash.size, self._emit_cooked)
        self.rt: Runtime | None = None

    # -- SimProgram ---------------------------------------------------------------------------
    def run(self) -> None:
        self.cpu.bind()
        try:
            self._hard_boot()
            while True:
                self.rt = Runtime(self)
                self._soft_boot(self.rt)
                Repl(self, self.rt).run()
                self._soft_reset(self.rt)
        except ProgramHalted:
            pass
        except Exception as exc:   # a bug in the emulation: say so in the board's event log
            try:
                self.ctx.events.emit("program-error", where="maixpy", error=repr(exc))
            finally:
                raise
        finally:
            self._shutdown()

    def halt(self) -> None:
        self.cpu.halt()

    # -- used by the emulated modules --------------------------------------------------------
    def configured_gc_heap(self) -> int:
        value = self.ctx.storage.get_config("gc_heap_size", None)
        if not isinstance(value, int) or isinstance(value, bool) or value == 0:
            return self.profile.memory.gc_heap_default
        return value

    def reboot(self, reason: str) -> None:
        """machine.reset() and friends: ask the board for a reset and wait to be halted."""
        try:
            self.ctx.uart.flush(timeout=2.0)
        except ProgramHalted:
            raise
        self.ctx.request_reset(reason)
        self.cpu.sleep(REBOOT_WAIT_S, interruptible=False)
        raise ProgramHalted()

    def _emit_cooked(self, text: str) -> None:
        # KPU messages (finalisers may run from an automatic collection in user code)
        with self.cpu.native():
            self.console.write_cooked(text)

    # -- boot -------------------------------------------------------------------------------------
    def _hard_boot(self) -> None:
        lines = ["", *CLOCK_LINES, f"[MAIXPY] Flash:{self.profile.sim.flash_id}",
                 *self.layout.boot_lines()]
        self.console.write_str("\r\n".join(lines) + "\r\n")
        self.sysheap.take_exact(self.profile.sim.boot_sys_alloc)

    def _soft_boot(self, rt: Runtime) -> None:
        self.console.write_str(self.layout.gc_line() + "\r\n")
        if self._boot_py(rt):
            rt.run_file("boot.py", "boot.py")
            if self.mode == "friendly":
                rt.run_file("main.py", "main.py")

    def _boot_py(self, rt: Runtime) -> bool:
        """The frozen _boot.py; False when Ctrl-C interrupted it."""
        sd = "sd" in rt.vfs.mount_names
        rt.vfs.chdir("/sd" if sd else "/flash")
        rt.sys_path[:] = ["", "."] + (["/sd"] if sd else []) + ["/flash"]
        console = self.console
        console.write_cooked("[MaixPy] init end\n")
        rt.set_interrupt_char(3)
        try:
            interrupted = self._interruptible_wait(BOOT_WAIT_S)
        finally:
            rt.set_interrupt_char(None)
        if interrupted:
            console.write_cooked('Traceback (most recent call last):\n'
                                 f'  File "_boot.py", line {BOOT_WAIT_LINE}, in <module>\n'
                                 'KeyboardInterrupt: \n')
            return False
        console.write_cooked(BOOT_BANNER + "\n")
        return True

    def _interruptible_wait(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            if self.cpu.halted:
                raise ProgramHalted()
            if self.cpu.take_pending() is not None:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.cpu.wake.wait(min(left, 0.05))

    def _soft_reset(self, rt: Runtime) -> None:
        rt.teardown()
        self.kpu.finalise_all()
        self.console.write_str(SOFT_REBOOT_TEXT)

    def _shutdown(self) -> None:
        self.cpu.finish()
        if self.rt is not None:
            self.rt.teardown()
        try:
            self.ctx.uart.set_interrupt_char(None, None)
        except Exception:  # the UART of a halted boot may refuse; nothing left to do
            pass
