"""Fault injection on the simulated board, armed through the control socket.

    {"cmd": "fault", "name": "<fault>", <param>: <value>, ...}   -> {"ok": true, "armed": {...}}
    {"cmd": "fault", "name": "clear"}                            -> every fault off (SD back in,
                                                                    a fault's main.py removed)
    {"cmd": "fault", "name": "list"}                             -> this table, as JSON
    {"cmd": "fault", "name": "armed"}                            -> what is armed right now

The board core calls the hooks below at fixed points: every batch of bytes crossing the line in
each direction (``host_to_board`` before pacing, ``host_delivered`` once that batch is in the
board's UART, ``board_to_host`` after pacing), every flash write/erase (``flash_write``), and
every chip boot (``on_boot``, which may delay the boot, put garbage on the line first, or keep
a dead chip silent). Every firing is an event ``{"kind": "fault", "name", "action": "fired"}``
in the board's event log. Byte counts (``after``, ``byte``) start when the fault is armed and
count bytes from the host to the board.

The table (``FAULTS``): name, parameters with defaults, what the board does.
"""
from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from k210sim.errors import SimError

DIRECTIONS = ("both", "to_board", "to_host")
KPU_LOAD_RE = re.compile(rb"kpu\s*\.\s*load", re.I)   # kpu.load(...) and KPU.load_flash(...)
RAW_END = 0x04          # Ctrl-D: the raw REPL runs the code it has received
WATCH_TAIL = 16         # bytes kept across batches to find a split "kpu.load"
MAIN_PY = "main.py"
MAIN_LOOP = ("import time\n"
             "print('main.py: looping forever')\n"
             "while True:\n"
             "    time.sleep_ms(100)\n")
MAIN_LOOP_NO_CTRL_C = "import micropython\nmicropython.kbd_intr(-1)\n" + MAIN_LOOP


@dataclass(frozen=True)
class Param:
    kind: type | tuple[type, ...]
    default: Any
    help: str
    choices: tuple[Any, ...] = ()


@dataclass(frozen=True)
class FaultSpec:
    name: str
    summary: str
    params: dict[str, Param]
    arm: Callable[["FaultHooks", dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class BootPlan:
    """What the next boot looks like, from the faults' point of view."""
    dead: bool = False            # the chip stays silent (a hung board)
    delay: float = 0.0            # seconds of silence before the firmware starts
    garbage: bytes = b""          # bytes put on the line before anything else


@dataclass
class _Rate:
    rate: float
    direction: str
    rng: random.Random
    left: int | None              # bytes still to hit; None = no limit

    def applies(self, direction: str) -> bool:
        return self.direction in ("both", direction) and (self.left is None or self.left > 0)


@dataclass
class _State:
    hang_after: int | None = None          # bytes to pass before the chip hangs
    hang_until: str = "reset"              # "reset" | "power" | "clear"
    hung: bool = False                     # dead until hang_until happens
    reset_after: int | None = None
    reset_byte: int = 0
    reset_repeat: bool = False
    corrupt: _Rate | None = None
    drop: _Rate | None = None
    brownout: int = 0                      # kpu.load calls still to brown out
    brownout_seen: bool = False            # "kpu.load" went by; reset at the next Ctrl-D
    brownout_tail: bytes = b""
    boot_delay: float = 0.0
    boot_delay_boots: int = 0
    garbage_size: int = 0
    garbage_boots: int = 0
    garbage_rng: random.Random = field(default_factory=random.Random)
    flash_fail_after: int | None = None    # flash writes to let through first
    flash_fail_left: int | None = None     # failures still to give; None = until cleared
    sd_removed: bool = False
    main_py: tuple[Path, bytes | None] | None = None   # (path we wrote, what was there before)
    armed: dict[str, dict[str, Any]] = field(default_factory=dict)


class FaultHooks:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.board: Any = None        # the SimBoard, set by the server once it exists
        self.isp: Any = None          # k210sim.isp.target.IspFaults for the next ISP boots, or None
        self._s = _State()
        self._pending: list[Callable[[], None]] = []
        self._timers: list[threading.Timer] = []
        # Kept for callers that registered their own faults before the table existed.
        self.handlers: dict[str, Callable[["FaultHooks", dict[str, Any]], dict[str, Any]]] = {}

    # -- hook points ------------------------------------------------------------------------
    def host_to_board(self, data: bytes) -> bytes:
        """Bytes from a client before they are paced onto the line; returns what goes on."""
        if not data:
            return data
        with self.lock:
            s = self._s
            if s.hung:
                return b""
            data = self._mangle(data, "to_board")
            cut, action = self._watch(data)
            if action is not None:
                self._pending.append(action)
            return data[:cut]

    def host_delivered(self) -> None:
        """The last batch is in the board's UART: run what was waiting for that (a reset)."""
        with self.lock:
            actions, self._pending = self._pending, []
        for action in actions:
            action()

    def board_to_host(self, data: bytes) -> bytes:
        """Bytes from the board's UART after they crossed the line, before the clients."""
        if not data:
            return data
        with self.lock:
            if self._s.hung:
                return b""
            return self._mangle(data, "to_host")

    def flash_write(self, addr: int, size: int) -> None:
        """Called before a flash write or erase is applied; raises to fail it."""
        with self.lock:
            s = self._s
            if s.flash_fail_after is None:
                return
            if s.flash_fail_after > 0:
                s.flash_fail_after -= 1
                return
            if s.flash_fail_left is not None:
                if s.flash_fail_left <= 0:
                    return
                s.flash_fail_left -= 1
        self._fired("flash_write_error", address=addr, size=size)
        raise SimError(f"injected flash write error at {addr:#010x} ({size} bytes)")

    def on_boot(self, cause: str) -> BootPlan:
        """The chip is about to boot (``cause``: "power" or "reset"); how it goes."""
        with self.lock:
            s = self._s
            if s.hung and (s.hang_until == "reset" or (s.hang_until == "power" and cause == "power")):
                s.hung = False
            dead = s.hung
            if s.reset_repeat and s.reset_byte:
                s.reset_after = s.reset_byte
            delay = 0.0
            if s.boot_delay_boots > 0 and not dead:
                s.boot_delay_boots -= 1
                delay = s.boot_delay
            garbage = b""
            if s.garbage_boots > 0 and not dead:
                s.garbage_boots -= 1
                garbage = s.garbage_rng.randbytes(s.garbage_size)
        if dead:
            self._fired("hang", on="boot")
        if delay:
            self._fired("slow_boot", delay=delay)
        if garbage:
            self._fired("garbage_at_boot", bytes=len(garbage))
        return BootPlan(dead=dead, delay=delay, garbage=garbage)

    def kpu_load(self, source: Any) -> bool:
        """For a firmware that reports kpu.load itself: True when the board browns out now
        (the caller then stops, as the chip does). Unused while the stream watcher does it."""
        with self.lock:
            if self._s.brownout <= 0:
                return False
            self._s.brownout -= 1
            self._s.brownout_seen = False
        self._reset("brownout during kpu.load", source=repr(source))
        return True

    # -- byte-stream faults (lock held) -------------------------------------------------------
    def _mangle(self, data: bytes, direction: str) -> bytes:
        s = self._s
        if s.drop is not None and s.drop.applies(direction):
            data = _drop(data, s.drop)
        if s.corrupt is not None and s.corrupt.applies(direction):
            data = _corrupt(data, s.corrupt)
        return data

    def _watch(self, data: bytes) -> tuple[int, Callable[[], None] | None]:
        """How much of ``data`` reaches the board, and what happens once it has."""
        s = self._s
        cut, action = len(data), None
        if s.hang_after is not None:
            if len(data) >= s.hang_after:
                cut, s.hang_after = s.hang_after, None
                action = self._hang_now
            else:
                s.hang_after -= len(data)
        if s.reset_after is not None and action is None:
            if len(data) >= s.reset_after:
                cut, byte = s.reset_after, s.reset_byte
                s.reset_after = None
                action = lambda: self._reset("reset at byte", byte=byte)  # noqa: E731
            else:
                s.reset_after -= len(data)
        if s.brownout > 0 and action is None:
            window = s.brownout_tail + data[:cut]
            offset = len(s.brownout_tail)
            if not s.brownout_seen:
                m = KPU_LOAD_RE.search(window)
                if m is not None:
                    s.brownout_seen = True
                    window, offset = window[m.end():], offset - m.end()
            if s.brownout_seen:
                end = window.find(bytes([RAW_END]))
                if end >= 0:
                    cut = end - offset + 1
                    s.brownout -= 1
                    s.brownout_seen = False
                    s.brownout_tail = b""
                    return cut, lambda: self._reset("brownout during kpu.load")
            s.brownout_tail = window[-WATCH_TAIL:]
        return cut, action

    # -- actions (lock not held) ---------------------------------------------------------------
    def _board(self) -> Any:
        if self.board is None:
            raise SimError("fault injection: the simulated board is not running")
        return self.board

    def _event(self, name: str, action: str, **fields: Any) -> None:
        if self.board is not None:
            self.board.events.emit("fault", name=name, action=action, **fields)

    def _fired(self, name: str, **fields: Any) -> None:
        self._event(name, "fired", **fields)

    def _hang_now(self) -> None:
        with self.lock:
            self._s.hung = True
        self._fired("hang")
        self._board().hang("fault: hang")

    def _reset(self, why: str, **fields: Any) -> None:
        name = "brownout_kpu_load" if why.startswith("brownout") else "reset_at_byte"
        self._fired(name, **fields)
        self._board().request_reset(f"fault: {why}")

    # -- control socket -------------------------------------------------------------------------
    def command(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Arm, clear or list faults; the reply's fields are merged into {"ok": true}."""
        if name == "clear":
            return {"cleared": self.clear()}
        if name == "list":
            return {"faults": describe()}
        if name == "armed":
            with self.lock:
                return {"armed": dict(self._s.armed)}
        handler = self.handlers.get(name)
        if handler is not None:
            return handler(self, params)
        spec = FAULTS.get(name)
        if spec is None:
            known = ", ".join(sorted([*FAULTS, "clear", "list", "armed"]))
            raise SimError(f"unknown fault {name!r} (known: {known})")
        args = _check_params(spec, params)
        try:
            reply = spec.arm(self, args)
        except ValueError as exc:
            raise ValueError(f"fault {name}: {exc}") from None
        with self.lock:
            self._s.armed[name] = args
        self._event(name, "armed", **args)
        return {"armed": {name: args}, **reply}

    def clear(self) -> list[str]:
        """Every fault off; undo what faults changed on the board (SD card, main.py)."""
        for t in self._timers:
            t.cancel()
        self._timers = []
        with self.lock:
            old, self._s = self._s, _State()
            self._pending = []
            self.isp = None
        cleared = sorted(old.armed)
        if old.sd_removed and self.board is not None:
            self.board.set_sd(True)
        if old.main_py is not None:
            _restore_main(*old.main_py)
        if cleared:
            self._event("clear", "cleared", faults=cleared)
        return cleared

    def _later(self, seconds: float, fn: Callable[[], None]) -> None:
        t = threading.Timer(seconds, fn)
        t.daemon = True
        self._timers = [x for x in self._timers if x.is_alive()] + [t]
        t.start()


# -- the table ---------------------------------------------------------------------------------
def _arm_hang(h: FaultHooks, a: dict[str, Any]) -> dict[str, Any]:
    with h.lock:
        h._s.hang_until = a["until"]
        h._s.hang_after = a["after"] if a["after"] > 0 else None
    if a["after"] <= 0:
        h._hang_now()
    return {}


def _arm_reset_at_byte(h: FaultHooks, a: dict[str, Any]) -> dict[str, Any]:
    if a["byte"] < 1:
        raise ValueError("'byte' must be >= 1")
    with h.lock:
        h._s.reset_byte = a["byte"]
        h._s.reset_after = a["byte"]
        h._s.reset_repeat = a["repeat"]
    return {}


def _rate(a: dict[str, Any], name: str) -> _Rate:
    if not 0 < a["rate"] <= 1:
        raise ValueError(f"'rate' must be in (0, 1], got {a['rate']}")
    count = a["count"]
    return _Rate(float(a["rate"]), a["direction"], random.Random(a["seed"]), count if count > 0 else None)


def _arm_corrupt(h: FaultHooks, a: dict[str, Any]) -> dict[str, Any]:
    r = _rate(a, "corrupt")
    with h.lock:
        h._s.corrupt = r
    return {}


def _arm_drop(h: FaultHooks, a: dict[str, Any]) -> dict[str, Any]:
    r = _rate(a, "drop")
    with h.lock:
        h._s.drop = r
    return {}


def _arm_disconnect(h: FaultHooks, a: dict[str, Any]) -> dict[str, Any]:
    board = h._board()
    if a["duration"] < 0:
        raise ValueError("'duration' must be >= 0 seconds")
    done = []
    for fe in board.line.frontends():
        if a["port"] in ("all", fe.name) and hasattr(fe, "unplug"):
            fe.unplug(float(a["duration"]))
            done.append(fe.name)
    if not done:
        raise SimError(f"fault disconnect: no front end named {a['port']!r} can be unplugged")
    h._fired("disconnect", ports=done, duration=a["duration"])
    return {"ports": done}


def _arm_brownout(h: FaultHooks, a: dict[str, Any]) -> dict[str, Any]:
    if a["count"] < 1:
        raise ValueError("'count' must be >= 1")
    with h.lock:
        h._s.brownout = a["count"]
        h._s.brownout_seen = False
        h._s.brownout_tail = b""
    return {}


def _arm_sd_removed(h: FaultHooks, a: dict[str, Any]) -> dict[str, Any]:
    board = h._board()
    if not board.storage.sd_present:
        raise SimError("fault sd_removed: there is no SD card in the board")
    board.set_sd(False)
    with h.lock:
        h._s.sd_removed = True
    h._fired("sd_removed")
    if a["duration"] > 0:
        def back() -> None:
            with h.lock:
                if not h._s.sd_removed:
                    return
                h._s.sd_removed = False
                h._s.armed.pop("sd_removed", None)
            try:
                board.set_sd(True)
            except Exception as exc:  # noqa: BLE001 - the simulator may be shutting down
                h._event("sd_removed", "error", error=repr(exc))
                return
            h._event("sd_removed", "cleared", why="reinserted")
        h._later(float(a["duration"]), back)
    return {}


def _arm_flash_write_error(h: FaultHooks, a: dict[str, Any]) -> dict[str, Any]:
    if a["after"] < 0:
        raise ValueError("'after' must be >= 0")
    with h.lock:
        h._s.flash_fail_after = a["after"]
        h._s.flash_fail_left = a["count"] if a["count"] > 0 else None
    return {}


def _arm_isp_silent(h: FaultHooks, a: dict[str, Any]) -> dict[str, Any]:
    from k210sim.isp.target import IspFaults   # only when armed
    with h.lock:
        h.isp = IspFaults(rom_silent=a["stage"] == "rom", stub_silent=a["stage"] == "stub")
    return {}


def _arm_slow_boot(h: FaultHooks, a: dict[str, Any]) -> dict[str, Any]:
    if a["delay"] <= 0 or a["boots"] < 1:
        raise ValueError("'delay' must be > 0 seconds and 'boots' >= 1")
    with h.lock:
        h._s.boot_delay = float(a["delay"])
        h._s.boot_delay_boots = a["boots"]
    return {}


def _arm_garbage(h: FaultHooks, a: dict[str, Any]) -> dict[str, Any]:
    if not 1 <= a["size"] <= 65536 or a["boots"] < 1:
        raise ValueError("'size' must be 1..65536 and 'boots' >= 1")
    with h.lock:
        h._s.garbage_size = a["size"]
        h._s.garbage_boots = a["boots"]
        h._s.garbage_rng = random.Random(a["seed"])
    return {}


def _arm_main_loop(h: FaultHooks, a: dict[str, Any]) -> dict[str, Any]:
    board = h._board()
    storage = board.storage
    # _boot.py runs main.py from /sd when a card is mounted, else from /flash
    root = storage.sd_root if storage.sd_present and storage.sd_root is not None else storage.flashfs_root
    path = Path(root) / MAIN_PY
    before = path.read_bytes() if path.is_file() else None
    with h.lock:
        if h._s.main_py is not None:         # armed twice: keep the original content
            before = h._s.main_py[1]
        h._s.main_py = (path, before)
    path.write_text(MAIN_LOOP if a["interruptible"] else MAIN_LOOP_NO_CTRL_C)
    if a["reset"]:
        board.press_reset()
    return {"path": str(path)}


FAULTS: dict[str, FaultSpec] = {spec.name: spec for spec in (
    FaultSpec("hang", "the chip stops: nothing in, nothing out, until a reset (or as 'until' says)", {
        "after": Param(int, 0, "host->board bytes to let through first (0 = now)"),
        "until": Param(str, "reset", "what brings it back", ("reset", "power", "clear")),
    }, _arm_hang),
    FaultSpec("reset_at_byte", "the chip resets when the host has sent N more bytes (an upload cut)", {
        "byte": Param(int, 1024, "host->board bytes before the reset"),
        "repeat": Param(bool, False, "arm again after every boot (every retry is cut too)"),
    }, _arm_reset_at_byte),
    FaultSpec("corrupt", "flip one random bit in bytes on the line, at a rate", {
        "rate": Param((int, float), 0.01, "probability per byte"),
        "direction": Param(str, "both", "which way", DIRECTIONS),
        "seed": Param(int, 0, "random seed"),
        "count": Param(int, 0, "bytes to corrupt at most (0 = no limit)"),
    }, _arm_corrupt),
    FaultSpec("drop", "lose bytes on the line, at a rate", {
        "rate": Param((int, float), 0.01, "probability per byte"),
        "direction": Param(str, "both", "which way", DIRECTIONS),
        "seed": Param(int, 0, "random seed"),
        "count": Param(int, 0, "bytes to drop at most (0 = no limit)"),
    }, _arm_drop),
    FaultSpec("disconnect", "the serial port vanishes (pty gone, TCP clients closed) and comes back", {
        "duration": Param((int, float), 2.0, "seconds until the port is back"),
        "port": Param(str, "all", "which front end", ("all", "pty", "rfc2217", "tcp")),
    }, _arm_disconnect),
    FaultSpec("brownout_kpu_load", "the chip resets when the host has sent the code of a kpu.load call "
              "(at the raw REPL's Ctrl-D after 'kpu.load')", {
        "count": Param(int, 1, "kpu.load calls to brown out"),
    }, _arm_brownout),
    FaultSpec("sd_removed", "the TF card is pulled out now", {
        "duration": Param((int, float), 0.0, "seconds until it is back (0 = until clear)"),
    }, _arm_sd_removed),
    FaultSpec("flash_write_error", "SPI flash writes and erases fail (the ISP stub answers BAD_WRITE)", {
        "after": Param(int, 0, "writes that succeed first"),
        "count": Param(int, 0, "writes that fail (0 = until clear)"),
    }, _arm_flash_write_error),
    FaultSpec("isp_silent", "the ISP never greets: the ROM (or the flash-mode stub) never answers", {
        "stage": Param(str, "rom", "which part is silent", ("rom", "stub")),
    }, _arm_isp_silent),
    FaultSpec("slow_boot", "the next boots stay silent for 'delay' seconds before the firmware starts", {
        "delay": Param((int, float), 15.0, "seconds of silence after each reset"),
        "boots": Param(int, 1, "how many boots are slow"),
    }, _arm_slow_boot),
    FaultSpec("main_loop", "a main.py that never returns is put where _boot.py runs it from", {
        "interruptible": Param(bool, True, "False: it turns Ctrl-C off first (kbd_intr(-1))"),
        "reset": Param(bool, False, "press reset so it runs now"),
    }, _arm_main_loop),
    FaultSpec("garbage_at_boot", "random bytes on the line before the boot log", {
        "size": Param(int, 256, "bytes of garbage"),
        "boots": Param(int, 1, "how many boots"),
        "seed": Param(int, 0, "random seed"),
    }, _arm_garbage),
)}


def describe() -> dict[str, Any]:
    """The table as JSON: summary and parameters (type, default, choices, help)."""
    out: dict[str, Any] = {}
    for spec in FAULTS.values():
        params = {}
        for key, p in spec.params.items():
            kinds = p.kind if isinstance(p.kind, tuple) else (p.kind,)
            entry = {"type": "number" if float in kinds else kinds[0].__name__, "default": p.default,
                     "help": p.help}
            if p.choices:
                entry["choices"] = list(p.choices)
            params[key] = entry
        out[spec.name] = {"summary": spec.summary, "params": params}
    return out


def _check_params(spec: FaultSpec, params: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(spec.params))
    if unknown:
        known = ", ".join(spec.params) or "none"
        raise ValueError(f"fault {spec.name}: unknown parameter(s) {', '.join(unknown)} (known: {known})")
    out: dict[str, Any] = {}
    for key, p in spec.params.items():
        value = params.get(key, p.default)
        kinds = p.kind if isinstance(p.kind, tuple) else (p.kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            want = " or ".join("number" if k is float else k.__name__ for k in kinds)
            raise ValueError(f"fault {spec.name}: {key!r} must be {want}, got {value!r}")
        if p.choices and value not in p.choices:
            raise ValueError(f"fault {spec.name}: {key!r} must be one of {', '.join(map(str, p.choices))}, "
                             f"got {value!r}")
        out[key] = value
    return out


def _drop(data: bytes, r: _Rate) -> bytes:
    out = bytearray()
    for b in data:
        if (r.left is None or r.left > 0) and r.rng.random() < r.rate:
            if r.left is not None:
                r.left -= 1
            continue
        out.append(b)
    return bytes(out)


def _corrupt(data: bytes, r: _Rate) -> bytes:
    out = bytearray(data)
    for i in range(len(out)):
        if (r.left is None or r.left > 0) and r.rng.random() < r.rate:
            out[i] ^= 1 << r.rng.randrange(8)
            if r.left is not None:
                r.left -= 1
    return bytes(out)


def _restore_main(path: Path, before: bytes | None) -> None:
    try:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(before)
    except OSError:
        pass   # the state dir went away with the simulator
