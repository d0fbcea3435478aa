"""The simulated K210 chip: power, the RESET/BOOT state machine, and the CPU thread.

One worker thread owns all state changes, fed by timestamped items: modem-line changes from
the front ends (RFC 2217 setters, modem.sock datagrams), power and button presses from the
control socket, reboot requests from programs. Items are applied in arrival order *at their
timestamps*: when RESET is released at t, the chip samples BOOT at t + RESET_SETTLE_S, taking
into account every line change stamped before that instant even if the worker sees it late.

- DTR/RTS -> (reset_held, boot_low) through ``BoardSpec.pins`` (the board's auto-reset circuit).
- RESET asserted: the CPU stops at once (the program is halted, its UART goes dead).
- RESET released: after the settle time, BOOT low -> the ISP ROM (k210sim.isp.target), else the
  ROM checks the image at flash 0 (k210sim.firmware_image) and boots MaixPy (k210sim.maixpy)
  as the firmware build it names (k210sim.builds), or stays silent with the reason in the
  event log.
- With no client attached both lines are deasserted: the chip runs.
Each boot gets a fresh Uart (115200 baud) and a fresh program in its own CPU thread.

Faults (k210sim.faults): ``hang()`` stops the CPU without a reset (mode "hung": nothing in,
nothing out) until the next reset; at each boot ``faults.on_boot`` may keep a dead chip silent,
delay the firmware, or put garbage on the line before the boot log.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k210sim.boards import RESET_SETTLE_S, BoardSpec
from k210sim.builds import Build, load_build
from k210sim.errors import BuildError, SimError
from k210sim.events import EventLog
from k210sim.faults import BootPlan, FaultHooks
from k210sim.firmware_image import boot_image, image_size
from k210sim.program import ProgramFactory, ProgramHalted, SilentProgram, SimContext, SimProgram
from k210sim.storage import BoardStorage
from k210sim.uart import SerialLine

HALT_TIMEOUT_S = 2.0
COMMAND_TIMEOUT_S = 10.0


def default_program(mode: str, ctx: SimContext, build: Build | None) -> SimProgram | None:
    """The real programs, imported lazily; None when the module is not installed."""
    if mode == "isp":
        try:
            from k210sim.isp.target import IspTarget
        except ModuleNotFoundError as exc:
            if exc.name != "k210sim.isp.target":
                raise
            return None
        return IspTarget(ctx)
    try:
        from k210sim.maixpy import MaixPyFirmware
    except ModuleNotFoundError as exc:
        if exc.name != "k210sim.maixpy":
            raise
        return None
    return MaixPyFirmware(ctx, build)


@dataclass
class _Item:
    t: float
    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    done: threading.Event | None = None
    error: str | None = None


@dataclass
class _Cpu:
    thread: threading.Thread
    program: SimProgram
    boot: int


class SimBoard:
    def __init__(self, spec: BoardSpec, storage: BoardStorage, line: SerialLine, events: EventLog,
                 faults: FaultHooks | None = None, state_dir: Path | None = None,
                 program_factory: ProgramFactory | None = None,
                 reset_settle_s: float = RESET_SETTLE_S, halt_timeout_s: float = HALT_TIMEOUT_S) -> None:
        self.spec = spec
        self.storage = storage
        self.line = line
        self.events = events
        self.faults = faults if faults is not None else FaultHooks()
        self.state_dir = Path(state_dir) if state_dir is not None else storage.state_dir
        self.program_factory = program_factory or default_program
        self.reset_settle_s = reset_settle_s
        self.halt_timeout_s = halt_timeout_s
        # Line and chip state: written by the worker only, read by status() under _state.
        self._state = threading.Lock()
        self.dtr = False
        self.rts = False
        self.powered = False
        self.reset_held = False
        self.mode = "off"
        self.build_name: str | None = None
        self.boots = 0
        self._cpu: _Cpu | None = None
        self._sample_at: float | None = None
        self._force_boot_low = False
        self._power_boot = False          # the next boot follows power-on (not a reset)
        # Work queue
        self._cond = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._closed = False
        self._worker = threading.Thread(target=self._work, name="sim-board", daemon=True)
        self._worker.start()

    # -- public API (any thread) ------------------------------------------------------------
    def set_lines(self, dtr: bool | None = None, rts: bool | None = None, *, source: str,
                  t: float | None = None) -> None:
        """The host changed DTR and/or RTS (asserted = True). Returns at once."""
        self._post(_Item(t if t is not None else time.monotonic(), "lines",
                         {"dtr": dtr, "rts": rts, "source": source}))

    def power(self, on: bool) -> None:
        self._call("power", on=bool(on))

    def press_reset(self, boot: bool = False) -> None:
        """Press the reset button (with the BOOT button held when boot=True)."""
        self._call("button", boot=bool(boot))

    def request_reset(self, reason: str, boot: int | None = None) -> None:
        """A program asks for a chip reset; see SimContext for the semantics."""
        self.events.emit("reset-request", reason=reason)
        cpu = self._cpu
        uart = self.line.uart
        if uart is not None and (boot is None or (cpu is not None and cpu.boot == boot)):
            uart.halt()
        self._post(_Item(time.monotonic(), "reboot", {"boot": boot}))

    def hang(self, reason: str) -> None:
        """The chip stops where it is (a fault): the program halts, the UART goes dead, no reboot."""
        self.events.emit("hang-request", reason=reason)
        uart = self.line.uart
        if uart is not None:
            uart.halt()
        self._call("hang", reason=reason)

    def set_sd(self, present: bool) -> None:
        """Insert or remove the TF card (the MaixPy firmware mounts it at boot)."""
        if present and not self.spec.sd_slot:
            raise SimError(f"board {self.spec.name} has no SD slot")
        self.storage.set_sd_present(present)
        self.events.emit("sd", present=bool(present))

    def status(self) -> dict[str, Any]:
        with self._state:
            return {"power": self.powered, "mode": self.mode, "build": self.build_name,
                    "board": self.spec.name, "baud": self.line.board_baud,
                    "image_size": image_size(self.storage.flash),
                    "sd": self.storage.sd_present, "boots": self.boots,
                    "dtr": self.dtr, "rts": self.rts, "reset_held": self.reset_held}

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
        self._call("close")
        self._worker.join(timeout=COMMAND_TIMEOUT_S + self.halt_timeout_s)

    # -- queue ----------------------------------------------------------------------------
    def _post(self, item: _Item) -> None:
        with self._cond:
            if self._closed:
                return
            self._queue.append(item)
            self._cond.notify_all()

    def _call(self, kind: str, **args: Any) -> None:
        item = _Item(time.monotonic(), kind, args, threading.Event())
        with self._cond:
            if self._closed:
                raise SimError("the simulated board is shut down")
            self._queue.append(item)
            self._cond.notify_all()
        if not item.done.wait(COMMAND_TIMEOUT_S + self.halt_timeout_s):
            raise SimError(f"the simulated board did not handle {kind!r} in time")
        if item.error:
            raise SimError(item.error)

    def _next(self) -> _Item | None:
        """The next item to apply, or None when the pending BOOT sample is due first."""
        with self._cond:
            while True:
                if self._queue:
                    if self._sample_at is not None and self._queue[0].t >= self._sample_at:
                        return None
                    return self._queue.popleft()
                if self._sample_at is not None:
                    left = self._sample_at - time.monotonic()
                    if left <= 0:
                        return None
                    self._cond.wait(left)
                else:
                    self._cond.wait()

    def _work(self) -> None:
        while True:
            item = self._next()
            if item is None:
                self._sample()
                continue
            try:
                if item.kind == "close":
                    self._halt_cpu()
                    with self._cond:
                        self._closed = True
                    return
                getattr(self, f"_do_{item.kind}")(item)
            except Exception as exc:
                item.error = f"{item.kind}: {exc}"
                self.events.emit("board-error", error=item.error, trace=traceback.format_exc(limit=3))
            finally:
                if item.done is not None:
                    item.done.set()

    # -- state machine (worker thread only) -------------------------------------------------
    def _do_lines(self, item: _Item) -> None:
        a = item.args
        with self._state:
            if a["dtr"] is not None:
                self.dtr = bool(a["dtr"])
            if a["rts"] is not None:
                self.rts = bool(a["rts"])
        changed = "both" if a["dtr"] is not None and a["rts"] is not None else ("dtr" if a["dtr"] is not None else "rts")
        self.events.emit("lines", t=item.t, dtr=self.dtr, rts=self.rts, set=changed, source=a["source"])
        self._update_pins(item.t)

    def _update_pins(self, t: float) -> None:
        held, _ = self.spec.pins(self.dtr, self.rts)
        if held == self.reset_held:
            return
        with self._state:
            self.reset_held = held
        if not self.powered:
            return
        if held:
            self._sample_at = None
            self._halt_cpu()
            self.events.emit("reset", t=t, held=True)
        else:
            self._force_boot_low = False
            self._sample_at = t + self.reset_settle_s
            self.events.emit("reset", t=t, held=False)

    def _do_power(self, item: _Item) -> None:
        on = item.args["on"]
        if on == self.powered:
            return
        if on:
            with self._state:
                self.powered = True
                self.mode = "silent"
            self.events.emit("power", on=True)
            self._force_boot_low = False
            self._power_boot = True
            self._sample_at = None if self.reset_held else item.t + self.reset_settle_s
        else:
            self._sample_at = None
            self._halt_cpu()
            with self._state:
                self.powered = False
                self.mode = "off"
            self.events.emit("power", on=False)

    def _do_hang(self, item: _Item) -> None:
        if not self.powered or self.reset_held:
            return
        self._halt_cpu()
        with self._state:
            self.mode = "hung"
        self.events.emit("hung", reason=item.args["reason"])

    def _do_button(self, item: _Item) -> None:
        if not self.powered:
            raise SimError("the board is powered off")
        boot = item.args["boot"]
        self._halt_cpu()
        self.events.emit("reset", source="button", boot=boot)
        if not self.reset_held:
            self._force_boot_low = boot
            self._sample_at = time.monotonic() + self.reset_settle_s

    def _do_reboot(self, item: _Item) -> None:
        wanted = item.args.get("boot")
        if not self.powered or self.reset_held or (wanted is not None and wanted != self.boots):
            return  # stale request: the chip already restarted or stopped since
        self._halt_cpu()
        self._force_boot_low = False
        self._sample_at = item.t + self.reset_settle_s

    def _sample(self) -> None:
        self._sample_at = None
        if not self.powered or self.reset_held:
            return
        _, boot_low = self.spec.pins(self.dtr, self.rts)
        self._boot(boot_low or self._force_boot_low)
        self._force_boot_low = False

    def _halt_cpu(self) -> None:
        cpu = self._cpu
        self._cpu = None
        self.line.attach_uart(None)
        with self._state:
            self.mode = "silent" if self.powered else "off"
            self.build_name = None
        if cpu is None:
            return
        try:
            cpu.program.halt()
        except Exception as exc:
            self.events.emit("program-error", boot=cpu.boot, where="halt", error=repr(exc))
        cpu.thread.join(self.halt_timeout_s)
        if cpu.thread.is_alive():
            self.events.emit("halt-timeout", boot=cpu.boot,
                             error=f"program of boot {cpu.boot} did not stop within {self.halt_timeout_s} s")

    def _boot(self, isp: bool) -> None:
        with self._state:
            self.boots += 1
            boot_no = self.boots
        cause, self._power_boot = ("power" if self._power_boot else "reset"), False
        plan = self.faults.on_boot(cause)
        uart = self.line.new_uart()
        ctx = SimContext(board=self.spec, uart=uart, storage=self.storage, events=self.events,
                         request_reset=lambda reason: self.request_reset(reason, boot_no),
                         state_dir=self.state_dir, faults=self.faults)
        mode, build, fields = self._choose(isp)
        if plan.dead:
            mode, build, fields = "hung", None, {"reason": "fault: hang"}
        program: SimProgram | None = None
        if mode not in ("silent", "hung"):
            try:
                program = self.program_factory(mode, ctx, build)
            except Exception as exc:
                mode, fields = "silent", {"reason": f"program failed to start: {exc!r}"}
            else:
                if program is None:
                    fields["note"] = f"no program for {mode} mode installed: running silent"
        with self._state:
            self.mode = mode
            self.build_name = build.name if build is not None and mode == "firmware" else None
        self.events.emit("boot", boot=boot_no, mode=mode, cause=cause, **fields)
        program = program or SilentProgram(ctx)
        if plan.delay or plan.garbage:
            program = _FaultedStart(program, uart, plan)
        thread = threading.Thread(target=self._cpu_main, args=(program, boot_no),
                                  name=f"sim-cpu-{boot_no}", daemon=True)
        self._cpu = _Cpu(thread, program, boot_no)
        thread.start()

    def _choose(self, isp: bool) -> tuple[str, Build | None, dict[str, Any]]:
        if isp:
            return "isp", None, {}
        result = boot_image(self.storage.flash)
        if not result.ok:
            return "silent", None, {"reason": result.reason}
        try:
            build = load_build(result.build)
        except BuildError as exc:
            return "silent", None, {"reason": f"image names an unusable firmware build: {exc}"}
        return "firmware", build, {"build": build.name, "version": result.version}

    def _cpu_main(self, program: SimProgram, boot_no: int) -> None:
        try:
            program.run()
        except ProgramHalted:
            return
        except Exception as exc:
            self.events.emit("program-error", boot=boot_no, error=repr(exc),
                             trace=traceback.format_exc(limit=6))
            return
        self.events.emit("program-exit", boot=boot_no)


class _FaultedStart:
    """A program started late and/or after garbage on the line (k210sim.faults.BootPlan)."""

    def __init__(self, program: SimProgram, uart: Any, plan: BootPlan) -> None:
        self.program = program
        self.uart = uart
        self.plan = plan
        self._stop = threading.Event()

    def run(self) -> None:
        if self.plan.garbage:
            self.uart.write(self.plan.garbage)
        if self._stop.wait(self.plan.delay):
            return
        self.program.run()

    def halt(self) -> None:
        self._stop.set()
        self.program.halt()
