"""MaixPy v0.6.x running on the simulated K210: boot log, _boot.py, boot.py/main.py, REPL.

What the board prints (sipeed/MaixPy-v1@973361c0d components/micropython/port/src/maixpy_main.c
maixpy_main l.664-698 and mp_task l.495-653, builtin_py/_boot.py), every line ending "\\r\\n":
    (empty line) [MAIXPY] Pll0..Pll2, cpu and kpu frequencies, [MAIXPY] Flash:<build flash_id>
    (GC fallback lines when the configured GC heap cannot be malloc'ed)
    [MaixPy] gc heap=0x...-0x...(<size>)                              <- again at each soft reset
    [MaixPy] init end                                                 <- _boot.py
    (200 x sleep_ms(1): a Ctrl-C here stops _boot.py with a KeyboardInterrupt traceback and
     boot.py/main.py are skipped)
    _boot.py writes its default main.py into the cwd when there is none (l.42-101)
    (empty line) the MAIXPY ASCII banner, Official Site/Wiki lines, (empty line)
    boot.py output, then main.py output (main.py only when the REPL is in friendly mode)
    MicroPython <version> on <date>; Sipeed_M1 with kendryte-k210 / Type "help()" ... / ">>> "
boot.py and main.py run from the cwd _boot.py chose: /sd when a card is mounted, else /flash.
_boot.py's default main.py drives the LCD (lcd.init, a welcome screen) and prints nothing unless
pin 16 is pulled low; no LCD is simulated, so a main.py whose bytes are exactly that default is
run as the silent program it is on a board without a pulled-down pin 16 (a recognised
shortcut, not an interpretation of the LCD calls). The IDE mode and cover.*.py handling of
_boot.py are not modelled.

Soft reset (Ctrl-D in the friendly REPL, or on an empty raw REPL program): gc_sweep_all runs
every kpu_net finaliser ("kpu_net __del__"), then "[MaixPy]: soft reboot\\r\\n" (l.650) and the
soft-boot part of the log again; the REPL stays in the mode it was in.

A CPU trap raised by a firmware service (k210sim.firmware.errors.CpuFault) prints the SDK's core
dump and the board spins until it is reset (power, DTR/RTS, the control socket).
"""
from __future__ import annotations

import threading
import time
from typing import Any

from k210sim.errors import SimError
from k210sim.firmware.errors import CpuFault
from k210sim.firmware.services import FirmwareServices
from k210sim.firmware.syslog import CAUSE_FAULT_LOAD, core_dump
from k210sim.maixpy.console import Console
from k210sim.maixpy.cpu import Cpu
from k210sim.maixpy.repl import Repl
from k210sim.maixpy.runtime import Runtime
from k210sim.program import ProgramHalted

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
# Where each trap site's faulting instruction sits is not known without the build's link map:
# EPC values are plausible RAM addresses (UNCONFIRMED), the cause and the text are the SDK's.
FAULT_EPC = {"nncase_context::load_kmodel": 0x8004A3C2, "memcpy": 0x800D1C34,
             "sipeed_kpu_model_load": 0x80042E86, "sipeed_kpu_model_get_type": 0x8004461E,
             "sipeed_kpu_set_outputs_shape0": 0x800446B2, "py_kpu_set_layers": 0x8001B9D0}
DEFAULT_MAIN_PY = '''
try:
    import gc, lcd, image, sys, os
    from Maix import GPIO
    from fpioa_manager import fm
    test_pin=16
    fm.fpioa.set_function(test_pin,fm.fpioa.GPIO7)
    test_gpio=GPIO(GPIO.GPIO7,GPIO.IN,GPIO.PULL_UP)
    fm.fpioa.set_function(17,fm.fpioa.GPIO0)
    lcd_en = GPIO(GPIO.GPIO0,GPIO.OUT)
    lcd_en.value(0)
    lcd.init()
    lcd.clear(color=(255,0,0))
    lcd.draw_string(lcd.width()//2-68,lcd.height()//2-4, "Welcome to ", lcd.WHITE, lcd.RED)
    if test_gpio.value() == 0:
        print('PIN 16 pulled down, enter test mode')
        lcd.clear(lcd.PINK)
        lcd.draw_string(lcd.width()//2-68,lcd.height()//2-4, "Test Mode, wait ...", lcd.WHITE, lcd.PINK)
        import sensor
        import image
        sensor.reset()
        sensor.set_pixformat(sensor.RGB565)
        sensor.set_framesize(sensor.QVGA)
        sensor.run(1)
        lcd.freq(16000000)
        while True:
            img=sensor.snapshot()
            lcd.display(img)

    loading = image.Image(size=(lcd.width(), lcd.height()))
    loading.draw_rectangle((0, 0, lcd.width(), lcd.height()), fill=True, color=(255, 0, 0))
    info = "Welcome to MaixPy"
    loading.draw_string(int(lcd.width()//2 - len(info) * 5), (lcd.height())//4, info, color=(255, 255, 255), scale=2, mono_space=0)
    v = sys.implementation.version
    vers = 'V{}.{}.{} : maixpy.sipeed.com'.format(v[0],v[1],v[2])
    loading.draw_string(int(lcd.width()//2 - len(info) * 6), (lcd.height())//3 + 20, vers, color=(255, 255, 255), scale=1, mono_space=1)
    lcd.display(loading)
    tf = None
    try:
            os.listdir("/sd/.")
    except Exception as e:
        tf ="SDcard not mount,use flash!"
        loading.draw_string(int(lcd.width()//2 - len(info) * 7), (lcd.height())//2 + 10, tf, color=(255, 255, 255), scale=1, mono_space=1)
    if not tf:
        tf ="SDcard is mount,use SD!"
        loading.draw_string(int(lcd.width()//2 - len(info) * 6), (lcd.height())//2 + 10, tf, color=(255, 255, 255), scale=1, mono_space=1)
    lcd.display(loading)
    del loading, v, info, vers
    gc.collect()
finally:
    gc.collect()
'''.encode()


class MaixPyFirmware:
    """The SimProgram for a MaixPy image: ``run()`` in the board's CPU thread, ``halt()``."""

    def __init__(self, ctx: Any, build: Any) -> None:
        if build is None:
            raise SimError("no firmware build to run")
        self.ctx = ctx
        self.build = build
        self.cpu = Cpu()
        self.console = Console(ctx.uart, self.cpu)
        self.boot_monotonic = time.monotonic()
        self.reset_cause = 0
        self.mode = "friendly"
        self.sd_mounted = bool(ctx.storage.sd_present and ctx.storage.sd_root is not None)
        self.rt: Runtime | None = None
        self.faulted = False
        self._stop = threading.Event()
        self.fw = FirmwareServices(
            build, ctx.storage.flashfs_root, self._read_file, ctx.storage.flash.read,
            raw=self._emit_raw, cooked=self._emit_cooked, kpu_load_hook=self._brownout)
        self.gc_start = 0
        self.gc_size = 0
        self.gc_pool = 0

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
            if self.faulted:
                self._stop.wait()          # the trap handler spins: only a reset ends it
        except CpuFault as fault:          # a trap outside user code (boot, soft reset)
            self.trap(fault)
            self._stop.wait()
        except Exception as exc:   # a bug in the emulation: say so in the board's event log
            try:
                self.ctx.events.emit("program-error", where="maixpy", error=repr(exc))
            finally:
                raise
        finally:
            self._shutdown()

    def halt(self) -> None:
        self._stop.set()
        self.cpu.halt()

    # -- used by the emulated modules --------------------------------------------------------
    def reboot(self, reason: str) -> None:
        """machine.reset() and friends: ask the board for a reset and wait to be halted."""
        try:
            self.ctx.uart.flush(timeout=2.0)
        except ProgramHalted:
            raise
        self.ctx.request_reset(reason)
        self.cpu.sleep(REBOOT_WAIT_S, interruptible=False)
        raise ProgramHalted()

    def trap(self, fault: CpuFault) -> None:
        """The CPU took an exception: the SDK prints its dump, then the board spins."""
        if self.faulted:
            return
        self.faulted = True
        regs = {2: self.gc_start + self.gc_size - 0x1F40, 1: FAULT_EPC.get(fault.epc_site, 0) - 0x1E}
        epc = FAULT_EPC.get(fault.epc_site, 0x80040000)
        text = core_dump(self.fw.clock, fault.reason, fault.cause or CAUSE_FAULT_LOAD, epc, regs)
        try:
            with self.cpu.native():
                self.console.write(text)
        except ProgramHalted:
            pass
        self.ctx.events.emit("cpu-fault", reason=fault.reason, site=fault.epc_site)
        self.cpu.halt()

    def _emit_cooked(self, text: str) -> None:
        with self.cpu.native():
            self.console.write_cooked(text)

    def _emit_raw(self, data: bytes) -> None:
        with self.cpu.native():
            self.console.write(data)

    def _read_file(self, path: str) -> bytes | None:
        """vfs_internal_open + vfs_internal_size + read, as the KPU loader does them."""
        rt = self.rt
        return rt.vfs.read_whole(path) if rt is not None else None

    def _brownout(self, source: Any) -> None:
        faults = self.ctx.faults
        if faults is not None and faults.kpu_load(source):
            # brownout_kpu_load: the chip resets inside the load; nothing after it runs
            self.cpu.sleep(REBOOT_WAIT_S, interruptible=False)
            raise ProgramHalted()

    # -- boot -------------------------------------------------------------------------------------
    def _hard_boot(self) -> None:
        lines = ["", *CLOCK_LINES, f"[MAIXPY] Flash:{self.build.flash_id}"]
        self.console.write_str("\r\n".join(lines) + "\r\n")
        mem = self.fw.op_boot_memory()
        self.gc_start, self.gc_size, self.gc_pool = mem["gc_start"], mem["gc_size"], mem["gc_pool"]

    def gc_line(self) -> str:
        return "[MaixPy] gc heap=0x%x-0x%x(%d)" % (self.gc_start, self.gc_start + self.gc_size,
                                                   self.gc_size)

    def _soft_boot(self, rt: Runtime) -> None:
        self.console.write_str(self.gc_line() + "\r\n")
        if self._boot_py(rt):
            rt.run_file("boot.py", "boot.py")
            if self.mode == "friendly":
                self._main_py(rt)

    def _main_py(self, rt: Runtime) -> None:
        if rt.vfs.read_whole("main.py") == DEFAULT_MAIN_PY:
            rt.gc.collect()                # the LCD welcome screen: silent without an LCD
            return
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
        if not rt.vfs.exists_file("main.py"):
            rt.vfs.write_whole("main.py", DEFAULT_MAIN_PY)
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
        rt.sweep_all()
        self.console.write_str(SOFT_REBOOT_TEXT)

    def _shutdown(self) -> None:
        self.cpu.finish()
        if self.rt is not None:
            self.rt.teardown()
        try:
            self.ctx.uart.set_interrupt_char(None, None)
        except Exception:  # the UART of a halted boot may refuse; nothing left to do
            pass
