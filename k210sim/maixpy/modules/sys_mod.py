"""sys: MicroPython's sys on MaixPy (stdio on the REPL UART, byte-exact through .buffer).

``sys.stdin.buffer.read(n)`` blocks until n bytes arrived (like stdio_buffer_read) and takes them
from the same buffered input as the REPL, so a host can send a command and its binary payload
back to back. Ctrl-C stays the interrupt character unless the code calls
``micropython.kbd_intr(-1)`` first. ``sys.stdout`` text is cooked (\\n -> \\r\\n), its
``.buffer`` raw.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from k210sim.maixpy.modules import final, module
from k210sim.maixpy.mperrors import format_traceback, translate

if TYPE_CHECKING:
    from k210sim.maixpy.runtime import Runtime

_TOKEN = object()


@final
class _StdinBuffer:
    __slots__ = ("_rt",)

    def __init__(self, token: object, rt: "Runtime") -> None:
        if token is not _TOKEN:
            raise TypeError("cannot create instances")
        self._rt = rt

    def __repr__(self) -> str:
        return "<io.FileIO 0>"

    def read(self, n: int = -1) -> bytes:
        rt = self._rt
        with rt.native():
            rt.console.apply_pending_baud()
            if n is None or n < 0:
                while True:                    # stdin never ends: wait for Ctrl-C or halt
                    rt.cpu.sleep(3600)
            data = rt.console.read_exact(int(n), user=True)
        rt.gc.note_garbage(len(data))
        return data

    def readinto(self, buf: Any, n: int = -1) -> int:
        view = memoryview(buf).cast("B")
        want = len(view) if n is None or n < 0 else min(int(n), len(view))
        rt = self._rt
        with rt.native():
            rt.console.apply_pending_baud()
            got = 0
            while got < want:
                chunk = rt.console.read_some(want - got, user=True)
                view[got:got + len(chunk)] = chunk
                got += len(chunk)
        return want

    def readline(self) -> bytes:
        rt = self._rt
        with rt.native():
            rt.console.apply_pending_baud()
            return rt.console.read_until(b"\n", user=True)


@final
class _Stdin:
    __slots__ = ("_rt", "buffer")

    def __init__(self, token: object, rt: "Runtime") -> None:
        if token is not _TOKEN:
            raise TypeError("cannot create instances")
        self._rt = rt
        self.buffer = _StdinBuffer(_TOKEN, rt)

    def __repr__(self) -> str:
        return "<io.TextIOWrapper 0>"

    def read(self, n: int = -1) -> str:
        return self.buffer.read(n).decode("utf-8", "replace")

    def readline(self) -> str:
        return self.buffer.readline().decode("utf-8", "replace")

    def __iter__(self) -> "_Stdin":
        return self

    def __next__(self) -> str:
        return self.readline()


@final
class _StdoutBuffer:
    __slots__ = ("_rt",)

    def __init__(self, token: object, rt: "Runtime") -> None:
        if token is not _TOKEN:
            raise TypeError("cannot create instances")
        self._rt = rt

    def __repr__(self) -> str:
        return "<io.FileIO 1>"

    def write(self, data: Any) -> int:
        try:
            payload = bytes(memoryview(data))
        except TypeError:
            raise TypeError("object with buffer protocol required") from None
        self._rt.write_raw(payload)
        return len(payload)

    def flush(self) -> None:
        return None


@final
class _Stdout:
    __slots__ = ("_rt", "buffer")

    def __init__(self, token: object, rt: "Runtime") -> None:
        if token is not _TOKEN:
            raise TypeError("cannot create instances")
        self._rt = rt
        self.buffer = _StdoutBuffer(_TOKEN, rt)

    def __repr__(self) -> str:
        return "<io.TextIOWrapper 1>"

    def write(self, text: Any) -> int:
        if isinstance(text, str):
            self._rt.write_text(text)
            return len(text)
        try:
            payload = bytes(memoryview(text))
        except TypeError:
            raise TypeError("object with buffer protocol required") from None
        self._rt.write_text(payload)
        return len(payload)

    def flush(self) -> None:
        return None


class _Implementation(tuple):
    def __repr__(self) -> str:
        return f"(name={self[0]!r}, version={self[1]!r})"

    name = property(lambda self: self[0])
    version = property(lambda self: self[1])


def build(rt: "Runtime", name: str):
    from k210sim.maixpy.modules.os_mod import release_of
    release = tuple(int(p) for p in release_of(rt.build.version).split(".")[:3]
                    if p.isdigit())
    stdout = _Stdout(_TOKEN, rt)

    def exit(code: Any = None) -> None:
        raise SystemExit(code) if code is not None else SystemExit()

    def print_exception(exc: Any, file: Any = None) -> None:
        if not isinstance(exc, BaseException):
            raise TypeError("exception expected")
        text = format_traceback(translate(exc))
        if file is None or file is stdout:
            rt.write_text(text)
        else:
            file.write(text)

    mod = module(
        name,
        argv=[], byteorder="little", maxsize=(1 << 63) - 1, platform="MaixPy",
        version="3.4.0", version_info=(3, 4, 0),
        implementation=_Implementation(("micropython", release)),
        path=rt.sys_path, modules=rt.sys_modules,
        stdin=_Stdin(_TOKEN, rt), stdout=stdout, stderr=stdout,
        exit=exit, print_exception=print_exception,
    )
    return mod
