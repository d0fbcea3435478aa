"""The emulated CPU's two interrupt lines: Ctrl-C (KeyboardInterrupt) and halt (ProgramHalted).

On the board, the UART IRQ sees Ctrl-C and sets a pending exception that the MicroPython VM
raises at its next branch, so even ``while True: pass`` stops. Here user code is CPython
bytecode running in the firmware thread, and the pending exception is raised in that thread
with ``PyThreadState_SetAsyncExc``.

An asynchronous exception must never land inside the firmware's own bookkeeping or inside the
board's UART (its Condition.wait is not safe against one), so the firmware thread is always in
one of these states, switched only under ``_lock``:
- *user*: sandboxed user bytecode is running; an interrupt is raised asynchronously at once.
- *native* (``with cpu.native():``, the emulated "C" functions, nestable): an interrupt is only
  recorded; blocking waits poll it (``cpu.poll()``) and it is raised synchronously when the
  outermost native section ends.
- outside user code (REPL, boot): interrupts are recorded and polled where the firmware allows.

Entering native first cancels any armed exception (``SetAsyncExc(tid, NULL)``) *then* marks the
state, both while holding the lock the interrupt side needs to arm one: an exception armed
earlier either fires before anything changed or is cancelled. ``halt()`` keeps re-arming
ProgramHalted every 50 ms for a few seconds, so user code that catches it (bare ``except:``,
``finally:`` loops) still stops; every except handler also re-checks (sandbox ``_except_hook_``).
"""
from __future__ import annotations

import ctypes
import threading
import time
from typing import Callable

from k210sim.program import ProgramHalted

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc

HALT_REARM_S = 0.05
HALT_REARM_FOR_S = 5.0
POLL_S = 0.02


def _arm(tid: int, exc: type[BaseException] | None) -> None:
    # None becomes a NULL pointer (no argtypes declared): that cancels a pending exception.
    _set_async_exc(ctypes.c_ulong(tid), ctypes.py_object(exc) if exc is not None else None)


class Cpu:
    """Interrupt state of one firmware run (one hard boot)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tid: int | None = None
        self._user = False
        self._native = 0
        self._armed = False
        self._pending: type[BaseException] | None = None
        self.halted = False
        self.wake = threading.Event()
        self._finished = threading.Event()
        self._watchdog: threading.Thread | None = None
        self.on_wake: list[Callable[[], None]] = []

    # -- firmware thread ----------------------------------------------------------------------
    def bind(self) -> None:
        self._tid = threading.get_ident()

    def finish(self) -> None:
        """run() is returning: stop the halt watchdog and never arm again."""
        with self._lock:
            self._finished.set()
            self._cancel_locked()
            self._user = False
        wd = self._watchdog
        if wd is not None and wd is not threading.current_thread():
            wd.join(timeout=1.0)

    def enter_user(self) -> None:
        with self._lock:
            self._cancel_locked()
            self._user = True
            self._native = 0
            if self._pending is not None and self._tid is not None:
                _arm(self._tid, self._pending)
                self._armed = True

    def leave_user(self) -> None:
        """Back to firmware code; idempotent and retried if an interrupt lands meanwhile."""
        for _ in range(100):
            try:
                with self._lock:
                    self._cancel_locked()
                    self._user = False
                    self._native = 0
                    if not self.halted:
                        self._pending = None
                return
            except KeyboardInterrupt:
                continue
        raise RuntimeError("could not leave user mode")  # pragma: no cover

    def native(self) -> "_Native":
        return _Native(self)

    def poll(self) -> None:
        """Raise a pending interrupt now (from a blocking wait in native code or the firmware)."""
        if self.halted:
            raise ProgramHalted()
        if self._pending is not None and self._user:
            with self._lock:
                exc, self._pending = self._pending, None
                self.wake.clear()
            if exc is not None:
                raise exc()

    def acknowledge(self, exc: BaseException | None) -> None:
        """User code caught a KeyboardInterrupt: the Ctrl-C it carried is no longer pending."""
        if not isinstance(exc, KeyboardInterrupt):
            return
        with self._lock:
            if self._pending is KeyboardInterrupt:
                self._pending = None
                self._cancel_locked()
                self.wake.clear()

    def take_pending(self) -> type[BaseException] | None:
        """Consume a recorded Ctrl-C outside user code (boot windows); halt is never consumed."""
        with self._lock:
            exc = self._pending
            if exc is KeyboardInterrupt:
                self._pending = None
                self.wake.clear()
                return exc
            return None

    def sleep(self, seconds: float, interruptible: bool = True) -> None:
        """Wait, waking early for an interrupt (raised when ``interruptible``) or a halt."""
        deadline = time.monotonic() + max(seconds, 0.0)
        while True:
            if self.halted:
                raise ProgramHalted()
            if interruptible:
                self.poll()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.wake.wait(min(left, 0.25))
            if self.wake.is_set() and not self.halted and self._pending is None:
                self.wake.clear()

    # -- interrupt side (UART RX thread, board thread) ----------------------------------------
    def interrupt(self) -> None:
        """Ctrl-C received while code runs (the UART interrupt-char callback)."""
        with self._lock:
            if self.halted or self._finished.is_set():
                return
            self._pending = KeyboardInterrupt
            if self._user and self._native == 0 and self._tid is not None:
                _arm(self._tid, KeyboardInterrupt)
                self._armed = True
        self.wake.set()
        for hook in list(self.on_wake):
            hook()

    def halt(self) -> None:
        """Stop the firmware thread promptly, whatever it is doing."""
        with self._lock:
            if self.halted:
                return
            self.halted = True
            self._pending = ProgramHalted
            self._arm_halt_locked()
            if not self._finished.is_set():
                self._watchdog = threading.Thread(target=self._rearm, name="maixpy-halt",
                                                  daemon=True)
                self._watchdog.start()
        self.wake.set()
        for hook in list(self.on_wake):
            hook()

    # -- internals ------------------------------------------------------------------------------
    def _arm_halt_locked(self) -> None:
        if self._user and self._native == 0 and self._tid is not None \
                and not self._finished.is_set():
            _arm(self._tid, ProgramHalted)
            self._armed = True

    def _rearm(self) -> None:
        end = time.monotonic() + HALT_REARM_FOR_S
        while not self._finished.wait(HALT_REARM_S) and time.monotonic() < end:
            with self._lock:
                self._arm_halt_locked()

    def _cancel_locked(self) -> None:
        if self._armed and self._tid is not None:
            _arm(self._tid, None)
        self._armed = False


class _Native:
    """``with cpu.native():`` around emulated firmware code called from user code."""

    __slots__ = ("_cpu",)

    def __init__(self, cpu: Cpu) -> None:
        self._cpu = cpu

    def __enter__(self) -> None:
        cpu = self._cpu
        with cpu._lock:
            cpu._cancel_locked()        # first: nothing can fire inside the section any more
            cpu._native += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        cpu = self._cpu
        raise_now: type[BaseException] | None = None
        with cpu._lock:
            cpu._native = max(cpu._native - 1, 0)
            if cpu._native == 0 and cpu._user and cpu._pending is not None:
                if exc_type is None:
                    raise_now = cpu._pending
                    if not cpu.halted:
                        cpu._pending = None
                elif cpu._tid is not None:
                    _arm(cpu._tid, cpu._pending)   # fires once back in user code
                    cpu._armed = True
        if raise_now is not None:
            raise raise_now()
