"""Raw REPL client against a tiny fake MicroPython REPL on a socket:// URL.

The fake speaks MicroPython's raw REPL framing (lib/utils/pyexec.c) and runs code with CPython. It can answer the
raw-paste probe three ways: like MaixPy (not understood), refused (R\\x00) or supported (R\\x01
with windowed flow control), so every branch of the client is exercised without the simulator.
"""
from __future__ import annotations

import io
import os
import shutil
import socket
import tempfile
import struct
import threading
import time
from pathlib import Path

import pytest

from hil.console import Console
from hil.errors import ReplError, ReplProtocolError
from hil.link import Link, SerialLog
from hil.device.micropython.repl import RAW_PROMPT, Repl, parse_traceback

BANNER = b"MicroPython v0.6.2-75-g973361c0d on 2022-04-16; Sipeed_M1 with kendryte-k210\r\n" \
         b'Type "help()" for more information.\r\n>>> '


class FakeRepl:
    """One-connection fake REPL. raw_paste: "old" (MaixPy), "refuse" or "yes".

    Code runs in CPython with small stand-ins for MicroPython modules (sys with stdin.buffer,
    micropython.kbd_intr, uos, uhashlib, ubinascii) and ``open`` mapped under ``root``, so
    /sd/x is root/sd/x. Output streams to the host as the code prints.
    """

    def __init__(self, raw_paste: str = "old", window: int = 32, silent: bool = False,
                 root: Path | None = None, streaming: bool = True) -> None:
        self.raw_paste = raw_paste
        self.window = window
        self.silent = silent
        self._own_root = root is None
        self.root = root or Path(tempfile.mkdtemp(prefix="fakerepl-"))
        self.streaming = streaming        # has sys.stdin.buffer / sys.stdout.buffer
        self.drop_stdin: set[int] = set()  # 1-based positions of stdin bytes lost on the wire
        self.stdin_count = 0
        self.corrupt_writes = 0           # file writes to corrupt (one flipped byte each)
        self.kbd_intr: list[int] = []
        self.received = bytearray()
        self.execs: list[str] = []
        self.namespace: dict = {}
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(1)
        self.url = f"socket://127.0.0.1:{self._server.getsockname()[1]}"
        self._stop = threading.Event()
        self._conn: socket.socket | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        if self._conn is not None:
            self._conn.close()
        self._thread.join(5)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- byte source with a small lookahead ----------------------------------------------------
    def _recv(self) -> bytes:
        while not self._stop.is_set():
            try:
                data = self._conn.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return b""
            self.received += data
            return data
        return b""

    def _serve(self) -> None:
        try:
            self._conn, _ = self._server.accept()
        except OSError:
            return
        self._conn.settimeout(0.05)
        self._pending = b""
        raw = False
        line = bytearray()
        send = self._conn.sendall
        while not self._stop.is_set():
            if not self._pending:
                self._pending = self._recv()
                if not self._pending:
                    return
            c, self._pending = self._pending[:1], self._pending[1:]
            if self.silent:
                continue
            if not raw:
                if c == b"\x01":
                    raw, line = True, bytearray()
                    send(RAW_PROMPT)
                elif c == b"\x03":
                    send(b"\r\n>>> ")
                elif c == b"\x04":
                    send(b"MPY: soft reboot\r\n" + BANNER)
                continue
            if c == b"\x01":
                line = bytearray()
                send(RAW_PROMPT)
            elif c == b"\x02":
                raw = False
                send(b"\r\n" + BANNER)
            elif c == b"\x03":
                line = bytearray()
            elif c == b"\x04":
                if not line:
                    send(b"soft reboot\r\n" + RAW_PROMPT)
                    continue
                send(b"OK")
                self._run(bytes(line))
                line = bytearray()
            elif c == b"\x05" and not line and self.raw_paste != "old":
                while len(self._pending) < 2:
                    self._pending += self._recv()
                assert self._pending[:2] == b"A\x01"
                self._pending = self._pending[2:]
                if self.raw_paste == "refuse":
                    send(b"R\x00")
                    continue
                send(b"R\x01" + struct.pack("<H", self.window))
                self._paste()
            else:
                line += c

    def _paste(self) -> None:
        code = bytearray()
        got = 0
        while True:
            if not self._pending:
                self._pending = self._recv()
            c, self._pending = self._pending[:1], self._pending[1:]
            if c == b"\x04":
                self._conn.sendall(b"\x04")
                self._run(bytes(code))
                return
            code += c
            got += 1
            if got == self.window:
                got = 0
                self._conn.sendall(b"\x01")

    # -- running code: output streams straight to the host, like the board ----------------------
    def _send(self, data: bytes) -> None:
        self._conn.sendall(data)

    def _stdin_read(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            if not self._pending:
                self._pending = self._recv()
                if not self._pending:
                    raise OSError("connection closed")
            take = self._pending[:n - len(out)]
            self._pending = self._pending[len(take):]
            for b in take:
                self.stdin_count += 1
                if self.stdin_count in self.drop_stdin:
                    continue          # a byte lost on the wire
                out.append(b)
        return bytes(out)

    def _modules(self) -> dict:
        import binascii
        import hashlib
        import types
        fake = self
        root = self.root

        def host(path: str) -> Path:
            return root / path.lstrip("/")

        def write_text(text: str) -> None:
            fake._send(text.replace("\n", "\r\n").encode())

        sys_mod = types.SimpleNamespace(stdout=types.SimpleNamespace(write=write_text))
        if self.streaming:
            sys_mod.stdin = types.SimpleNamespace(buffer=types.SimpleNamespace(read=self._stdin_read))
            sys_mod.stdout.buffer = types.SimpleNamespace(write=self._send)
        else:
            sys_mod.stdin = types.SimpleNamespace()
        micropython = types.SimpleNamespace(kbd_intr=lambda ch: fake.kbd_intr.append(ch))
        uos = types.SimpleNamespace(
            stat=lambda p: (0, 0, 0, 0, 0, 0, host(p).stat().st_size) if host(p).exists()
            else (_ for _ in ()).throw(OSError(2, "ENOENT")),
            listdir=lambda p="/": sorted(os.listdir(host(p))),
            remove=lambda p: os.remove(host(p)),
            rename=lambda a, b: os.rename(host(a), host(b)),
            mkdir=lambda p: os.mkdir(host(p)))

        class File(io.FileIO):
            def write(self, data):   # noqa: D401 - corrupt on demand, like a bad card
                if fake.corrupt_writes:
                    fake.corrupt_writes -= 1
                    data = bytes([data[0] ^ 0xFF]) + bytes(data[1:])
                return super().write(data)

        return {"sys": sys_mod, "micropython": micropython, "uos": uos, "os": uos,
                "uhashlib": hashlib, "hashlib": hashlib, "ubinascii": binascii, "binascii": binascii,
                "open": lambda p, mode="r": File(host(p), mode.replace("b", "") or "r"),
                "print": lambda *a, end="\n": write_text(" ".join(map(str, a)) + end)}

    def _run(self, code: bytes) -> None:
        import builtins
        text = code.decode()
        self.execs.append(text)
        err = b""
        if text.startswith("#hang"):
            while b"\x03" not in self._pending:
                self._pending += self._recv()
            self._pending = self._pending[self._pending.index(b"\x03") + 1:]
            err = b"Traceback (most recent call last):\r\n  File \"<stdin>\", line 1, in <module>\r\nKeyboardInterrupt: \r\n"
        else:
            mods = self._modules()
            real_import = builtins.__import__

            def fake_import(name, *args, **kw):
                return mods[name] if name in mods else real_import(name, *args, **kw)
            self.namespace["__builtins__"] = dict(vars(builtins), __import__=fake_import,
                                                  open=mods["open"], print=mods["print"])
            try:
                exec(compile(text, "<stdin>", "exec"), self.namespace)
            except Exception as exc:  # noqa: BLE001 - reported like MicroPython does
                err = (f"Traceback (most recent call last):\r\n  File \"<stdin>\", line 1, in <module>\r\n"
                       f"{type(exc).__name__}: {exc}\r\n").encode()
        self._send(b"\x04" + err + b"\x04>")


@pytest.fixture
def fake():
    servers: list[FakeRepl] = []

    def make(**kw) -> FakeRepl:
        servers.append(FakeRepl(**kw))
        return servers[-1]
    yield make
    for s in servers:
        s.close()


@pytest.fixture
def connect(tmp_path: Path):
    links: list[Link] = []

    def make(server: FakeRepl) -> Repl:
        links.append(Link(server.url, log=SerialLog(tmp_path / "repl.log")))
        return Repl(Console(links[-1]))
    yield make
    for link in links:
        link.close()


def test_exec_eval_on_maixpy_style_repl(fake, connect) -> None:
    server = fake(raw_paste="old")
    repl = connect(server)
    assert repl.exec("print(1+1)") == b"2\r\n"
    assert repl.raw_paste is False                   # probed once, remembered
    assert repl.eval("{'a': [1, 2.5, b'x\\x00'], 'b': None}") == {"a": [1, 2.5, b"x\x00"], "b": None}
    assert server.received.count(b"\x05A\x01") == 1
    assert len(server.execs) == 2                    # each exec ran once


def test_raw_paste_refused_falls_back(fake, connect) -> None:
    server = fake(raw_paste="refuse")
    repl = connect(server)
    assert repl.exec("x = 5\nprint(x * 2)") == b"10\r\n"
    assert repl.raw_paste is False
    assert repl.eval("x") == 5
    assert server.received.count(b"\x05A\x01") == 1


def test_raw_paste_supported_uses_windows(fake, connect) -> None:
    server = fake(raw_paste="yes", window=32)
    repl = connect(server)
    code = "s = 0\n" + "".join(f"s += {i}\n" for i in range(100)) + "print(s)"
    assert repl.exec(code) == b"4950\r\n"
    assert repl.raw_paste is True
    assert repl.exec("print('again')") == b"again\r\n"
    assert server.received.count(b"\x05A\x01") == 2


def test_long_code_in_chunks(fake, connect) -> None:
    server = fake()
    repl = connect(server)
    code = "data = " + repr("y" * 5000) + "\nprint(len(data))"
    start = time.monotonic()
    assert repl.exec(code) == b"5000\r\n"
    # 20 chunks; the pause is half a chunk's wire time at 115200 (11 ms): about 0.2 s, not more
    assert time.monotonic() - start < 2.0


def test_device_exception_becomes_repl_error(fake, connect) -> None:
    repl = connect(fake())
    with pytest.raises(ReplError) as info:
        repl.exec("raise ValueError('[MAIXPY]kpu: model_addr must > 0 ')")
    assert info.value.exc_type == "ValueError"
    assert info.value.message == "[MAIXPY]kpu: model_addr must > 0 "   # trailing space kept
    assert "Traceback" in info.value.traceback
    assert repl.exec("print('still fine')") == b"still fine\r\n"


def test_parse_traceback_forms() -> None:
    err = parse_traceback(b"Traceback (most recent call last):\r\n  File \"<stdin>\", line 1, in <module>\r\n"
                          b"OSError: [Errno 2] ENOENT\r\n")
    assert (err.exc_type, err.message) == ("OSError", "[Errno 2] ENOENT")
    err = parse_traceback(b"Traceback (most recent call last):\r\nKeyboardInterrupt\r\n")
    assert (err.exc_type, err.message) == ("KeyboardInterrupt", "")
    assert parse_traceback(b"").exc_type == "Error"


def test_timeout_raises_protocol_error_then_recovers(fake, connect, tmp_path: Path) -> None:
    repl = connect(fake())
    with pytest.raises(ReplProtocolError) as info:
        repl.exec("#hang", timeout=0.3)
    message = str(info.value)
    assert "waiting for the code to finish (timeout 0.3 s)" in message
    assert str(tmp_path / "repl.log") in message and "\n" not in message
    # the next exec interrupts the hung code (Ctrl-C) and re-enters raw REPL
    assert repl.exec("print(3)") == b"3\r\n"


def test_eval_of_non_literal(fake, connect) -> None:
    repl = connect(fake())
    repl.exec("class K:\n    def __repr__(self): return '<K object>'\nk = K()")
    with pytest.raises(ReplProtocolError, match="not a Python literal"):
        repl.eval("k")


def test_silent_board_gives_up_after_retries(fake, connect) -> None:
    repl = connect(fake(silent=True))
    start = time.monotonic()
    with pytest.raises(ReplProtocolError, match=r"no raw REPL banner after 2 tries"):
        repl.enter_raw(tries=2, timeout=0.3)
    assert time.monotonic() - start < 5
