"""One soft boot of MicroPython on the board: the VFS, GC heap, sandbox, modules, __main__.

A soft reset (Ctrl-D) throws the Runtime away and builds a new one; what survives is the hard
boot state in k210sim.maixpy.firmware (system heap, loaded KPU models, the UART, the REPL mode).
User code runs only through ``execute``/``run_code``: Ctrl-C is the interrupt character while
it runs (``micropython.kbd_intr`` can change that until the command ends), and the CPU is in
"user" state so Ctrl-C and a halt can stop even a loop that never calls anything.
"""
from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any

from k210sim.maixpy.memory import GcHeap
from k210sim.maixpy.modules import builtin_module, names as module_names
from k210sim.maixpy.mperrors import format_traceback, translate
from k210sim.maixpy.policy import compile_user, is_guard_name
from k210sim.maixpy.readline import CTRL_C, CTRL_D, LineEditor
from k210sim.maixpy.sandbox import Guards, Sandbox, mp_repr, mp_str, mp_type_label
from k210sim.maixpy.vfs import Vfs
from k210sim.program import ProgramHalted

if TYPE_CHECKING:
    from k210sim.maixpy.firmware import MaixPyFirmware

OK, ERROR, EXIT = "ok", "error", "exit"
CTRL_C_CHAR = 3
_MISSING = object()

HELP_TEXT = (
    "Welcome to MicroPython on the Sipeed Maix!\n"
    "\n"
    "For generic online docs please visit https://maixpy.sipeed.com\n"
    "\n"
    "Official website : http://www.sipeed.com\n"
    "\n"
    "\n"
    "Control commands:\n"
    "  CTRL-A        -- on a blank line, enter raw REPL mode\n"
    "  CTRL-B        -- on a blank line, enter normal REPL mode\n"
    "  CTRL-C        -- interrupt a running program\n"
    "  CTRL-D        -- on a blank line, do a soft reset of the board\n"
    "  CTRL-E        -- on a blank line, enter paste mode\n"
    "\n"
    "For further help on a specific object, type help(obj)\n"
    "For a list of available modules, type help('modules')\n"
)


class Runtime:
    def __init__(self, board: "MaixPyFirmware") -> None:
        self.board = board
        self.build = board.build
        self.fw = board.fw                 # the firmware services (plain-data calls only)
        self.ctx = board.ctx
        self.cpu = board.cpu
        self.console = board.console
        self.gc = GcHeap(board.gc_pool, self._gc_roots)
        self.gc.on_collect.append(self.run_finalisers)
        # objects with a finaliser (kpu_net): ids the GC found unreachable, and every live one
        self.collected: list[int] = []
        self.finalisable: dict[int, Any] = {}
        storage = self.ctx.storage
        self.vfs = Vfs(storage.flashfs_root, storage.sd_root if board.sd_mounted else None,
                       lambda: bool(storage.sd_present), self.cpu.native, self.gc.note_garbage)
        self.guards = Guards(lambda: self.cpu.halted, self.cpu.acknowledge)
        self.sandbox = Sandbox(self.guards, {
            "print": self._print, "open": self.vfs.open, "input": self._input,
            "help": self._help, "import": self._import, "repl_print": self._repl_print,
        })
        self.builtin_modules: dict[str, types.ModuleType] = {}
        self.sys_path: list[str] = []
        self.sys_modules: dict[str, types.ModuleType] = {}
        self.main = self.sandbox.new_globals("__main__")
        self.repl_uart_obj: Any = None
        self._irq_char: int | None = None

    # -- plumbing -----------------------------------------------------------------------------
    def native(self):
        return self.cpu.native()

    def write_text(self, text: str | bytes) -> None:
        with self.cpu.native():
            self.console.write_cooked(text)
        self.gc.note_garbage(len(text) + 16)

    def write_raw(self, data: bytes) -> None:
        with self.cpu.native():
            self.console.write(data)

    def set_interrupt_char(self, ch: int | None) -> None:
        self._irq_char = ch
        self.ctx.uart.set_interrupt_char(ch, self.cpu.interrupt if ch is not None else None)

    def teardown(self) -> None:
        self.vfs.close_all()

    # -- finalisers (MicroPython runs __del__ of collected objects at the next gc) --------------
    def collected_object(self, obj_id: int) -> None:
        """weakref callback of an object with a finaliser: it is garbage now."""
        self.collected.append(obj_id)

    def run_finalisers(self) -> None:
        while self.collected:
            obj_id = self.collected.pop(0)
            self.finalisable.pop(obj_id, None)
            self.call_fw("kpu_net_del", net=obj_id)

    def sweep_all(self) -> None:
        """gc_sweep_all at soft reset: every object with a finaliser, reachable or not."""
        ids = sorted(set(self.collected) | set(self.finalisable))
        self.collected.clear()
        self.finalisable.clear()
        for obj_id in ids:
            self.call_fw("kpu_net_del", net=obj_id)

    def call_fw(self, op: str, **args: Any) -> Any:
        """One firmware operation from the firmware's own C side: returns its value or raises
        what the firmware raises (k210sim.maixpy.fwcall turns replies into exceptions)."""
        from k210sim.maixpy.fwcall import call
        return call(self, op, **args)

    def _gc_roots(self) -> list[Any]:
        roots = [v for k, v in self.main.items() if not is_guard_name(k) and k != "__builtins__"]
        for mod in list(self.sys_modules.values()):
            roots.extend(v for k, v in vars(mod).items()
                         if not is_guard_name(k) and k != "__builtins__")
        return roots

    # -- running user code ----------------------------------------------------------------------
    def execute(self, source: str | bytes, filename: str = "<stdin>", mode: str = "exec",
                ns: dict | None = None) -> tuple[str, BaseException | None]:
        """Compile and run; (OK|EXIT, None) or (ERROR, exception in MicroPython's words)."""
        try:
            code = compile_user(source, filename, mode)
        except SyntaxError as exc:
            return ERROR, exc
        self.gc.note_garbage(2 * len(source) + 256)
        return self.run_code(code, self.main if ns is None else ns)

    def run_code(self, code: types.CodeType, ns: dict) -> tuple[str, BaseException | None]:
        cpu = self.cpu
        try:
            self.set_interrupt_char(CTRL_C_CHAR)
            try:
                cpu.enter_user()
                exec(code, ns)
            finally:
                self._after_user()
        except ProgramHalted:
            raise
        except SystemExit:
            self._after_user()
            return EXIT, None
        except BaseException as exc:   # user code may raise anything, incl. KeyboardInterrupt
            self._after_user()
            return ERROR, translate(exc)
        return OK, None

    def _after_user(self) -> None:
        self.cpu.leave_user()
        if self.cpu.halted:
            raise ProgramHalted()
        if self._irq_char is not None:
            self.set_interrupt_char(None)

    def print_exception(self, exc: BaseException) -> None:
        with self.cpu.native():
            self.console.write_cooked(format_traceback(exc))

    def run_file(self, path: str, filename: str) -> tuple[str, BaseException | None] | None:
        """pyexec_file_if_exists: None when there is no such file."""
        if not self.vfs.exists_file(path):
            return None
        with self.vfs.open(path, "rb") as f:
            source = f.read()
        result = self.execute(source, filename, "exec")
        if result[0] == ERROR and result[1] is not None:
            self.print_exception(result[1])
        return result

    # -- builtins with a board side -----------------------------------------------------------
    def _print(self, *args: Any, sep: Any = " ", end: Any = "\n", file: Any = None) -> None:
        sep = " " if sep is None else sep
        end = "\n" if end is None else end
        if not isinstance(sep, str) or not isinstance(end, str):
            raise TypeError("sep and end must be str")
        text = sep.join(mp_str(a, self.guards) for a in args) + end
        sys_mod = self.builtin_modules.get("sys_mod")
        if file is None or (sys_mod is not None and file is getattr(sys_mod, "stdout", None)):
            self.write_text(text)
        else:
            file.write(text)

    def _repl_print(self, value: Any) -> None:
        if value is not None:
            self.write_text(mp_repr(value, self.guards) + "\n")

    def _input(self, prompt: Any = None) -> str:
        if prompt is not None:
            self.write_text(mp_str(prompt, self.guards))
        with self.cpu.native():
            editor = LineEditor(self.console.write)
            editor.start("", "")
            ret = -1
            while ret < 0:
                chunk = self.console.read_some(user=True)
                for i, c in enumerate(chunk):
                    ret = editor.process(c)
                    if ret >= 0:
                        self.console.unread(chunk[i + 1:])
                        break
        if ret == CTRL_C:
            raise KeyboardInterrupt()
        if ret == CTRL_D and not editor.line:
            raise EOFError()
        return editor.line

    def _help(self, obj: Any = _MISSING) -> None:
        if obj is _MISSING:
            self.write_text(HELP_TEXT)
            return
        if isinstance(obj, str) and obj == "modules":
            mods = module_names()
            rows = ["".join(f"{m:<20}" for m in mods[i:i + 4]).rstrip()
                    for i in range(0, len(mods), 4)]
            self.write_text("\n".join(rows) + "\nPlus any modules on the filesystem\n")
            return
        lines = [f"object {mp_repr(obj, self.guards)} is of type {mp_type_label(obj, self.guards)}"]
        if isinstance(obj, (types.ModuleType, type)):
            for key in sorted(vars(obj)):
                if not key.startswith("_"):
                    lines.append(f"  {key} -- {mp_repr(getattr(obj, key), self.guards)}")
        self.write_text("\n".join(lines) + "\n")

    def _import(self, name: Any, globals_: Any = None, locals_: Any = None,
                fromlist: Any = (), level: int = 0) -> types.ModuleType:
        if level:
            raise ImportError("can't perform relative import")
        if not isinstance(name, str):
            raise TypeError("can't convert %s to str" % type(name).__name__)
        mod = builtin_module(self, name)
        if mod is not None:
            return mod
        if name in self.sys_modules:
            return self.sys_modules[name]
        if name and "." not in name and not is_guard_name(name):
            for entry in list(self.sys_path):
                if not isinstance(entry, str):
                    continue
                base = f"{entry.rstrip('/')}/{name}" if entry else name
                for candidate in (f"{base}.py", f"{base}/__init__.py"):
                    if self.vfs.exists_file(candidate):
                        return self._load_user_module(name, candidate)
        raise ImportError(f"no module named '{name}'")

    def _load_user_module(self, name: str, path: str) -> types.ModuleType:
        with self.vfs.open(path, "rb") as f:
            source = f.read()
        code = compile_user(source, path, "exec")
        mod = self.sandbox.new_module(name, path)
        self.sys_modules[name] = mod
        try:
            exec(code, vars(mod))
        except BaseException:
            self.sys_modules.pop(name, None)
            raise
        return mod
