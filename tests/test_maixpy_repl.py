"""MaixPy firmware emulation: boot log, friendly/raw/paste REPL, interrupts, resets, baud switch."""
from __future__ import annotations

import re

import hashlib
import os
import time
from pathlib import Path
from typing import Callable

import pytest

from maixpy_fakes import Board, FakeStorage

BANNER_ART = (
    b"\r\n"
    b" __  __              _____  __   __  _____   __     __\r\n"
    b"|  \\/  |     /\\     |_   _| \\ \\ / / |  __ \\  \\ \\   / /\r\n"
    b"| \\  / |    /  \\      | |    \\ V /  | |__) |  \\ \\_/ /\r\n"
    b"| |\\/| |   / /\\ \\     | |     > <   |  ___/    \\   /\r\n"
    b"| |  | |  / ____ \\   _| |_   / . \\  | |         | |\r\n"
    b"|_|  |_| /_/    \\_\\ |_____| /_/ \\_\\ |_|         |_|\r\n"
    b"\r\n"
    b"Official Site : https://www.sipeed.com\r\n"
    b"Wiki          : https://maixpy.sipeed.com\r\n"
    b"\r\n"
)
MP_BANNER = (b"MicroPython v0.6.2-75-g973361c0d on 2022-04-16; Sipeed_M1 with kendryte-k210\r\n"
             b'Type "help()" for more information.\r\n')
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"


@pytest.fixture
def board(tmp_path: Path) -> Callable[..., Board]:
    made: list[Board] = []

    def make(build: str = "maixpy-v0.6.2-full", sd: bool = True, start: bool = True,
             sd_files: dict[str, bytes] | None = None, flash_files: dict[str, bytes] | None = None,
             storage: FakeStorage | None = None) -> Board:
        b = Board(tmp_path / f"board{len(made)}", build, sd=sd, storage=storage)
        for name, data in (sd_files or {}).items():
            (b.storage.sd_dir / name).write_bytes(data)
        for name, data in (flash_files or {}).items():
            (b.storage.flashfs_root / name).write_bytes(data)
        made.append(b)
        if start:
            b.start()
        return b

    yield make
    for b in made:
        if b.thread.is_alive():
            b.stop()


def test_boot_log_banner_and_prompt_exact(board):
    b = board(start=False)
    b.start(wait_prompt=False)
    got = b.host.read_until(b">>> ", 10)
    assert got == (b"\r\n[MAIXPY] Pll0:freq:806000000\r\n[MAIXPY] Pll1:freq:398666666\r\n"
                   b"[MAIXPY] Pll2:freq:45066666\r\n[MAIXPY] cpu:freq:403000000\r\n"
                   b"[MAIXPY] kpu:freq:398666666\r\n[MAIXPY] Flash:0xc8:0x17\r\n"
                   b"[MaixPy] gc heap=0x802ffd80-0x8037fd80(524288)\r\n"
                   b"[MaixPy] init end\r\n" + BANNER_ART + MP_BANNER + b">>> ")


def test_gc_heap_line_and_heap_free_follow_configured_size(board, tmp_path):
    storage = FakeStorage(tmp_path / "st")
    storage.set_gc_heap_size(256 * 1024)
    b = board(start=False, storage=storage)
    b.start(wait_prompt=False)
    assert b"[MaixPy] gc heap=0x802ffd80-0x8033fd80(262144)\r\n" in b.host.read_until(b">>> ")
    out = b.host.friendly("from Maix import utils; utils.gc_heap_size(), utils.heap_free()")
    assert out.endswith("(262144, %d)\r\n" % (2248704 + 262144))   # the heap went to the system


def test_boot_and_main_from_flash_without_card(board):
    b = board(sd=False, start=False, flash_files={
        "boot.py": b"print('boot here')\n", "main.py": b"x = 41\nprint('main', x + 1)\n"})
    b.start(wait_prompt=False)
    got = b.host.read_until(b">>> ")
    assert got.endswith(BANNER_ART + b"boot here\r\nmain 42\r\n" + MP_BANNER + b">>> ")
    assert b.host.friendly("x") == "x\r\n41\r\n"
    assert b.host.friendly("import os; os.getcwd(), os.listdir('/')") \
        .endswith("('/flash', ['flash'])\r\n")


def test_card_scripts_run_instead_of_flash_ones(board):
    b = board(start=False, flash_files={"boot.py": b"print('flash boot')\n"},
              sd_files={"main.py": b"print('sd main')\n1/0\n"})
    b.start(wait_prompt=False)
    got = b.host.read_until(b">>> ")
    assert b"flash boot" not in got
    assert got.endswith(BANNER_ART + b"sd main\r\nTraceback (most recent call last):\r\n"
                        b'  File "main.py", line 2, in <module>\r\n'
                        b"ZeroDivisionError: divide by zero\r\n" + MP_BANNER + b">>> ")


def test_friendly_expressions_statements_and_errors(board):
    h = board().host
    assert h.friendly("1+1") == "1+1\r\n2\r\n"
    assert h.friendly("a = [1, 'x', b'\\x00']") == "a = [1, 'x', b'\\x00']\r\n"
    assert h.friendly("a") == "a\r\n[1, 'x', b'\\x00']\r\n"
    assert h.friendly("None") == "None\r\n"
    assert h.friendly("print('hi', end='')") == "print('hi', end='')\r\nhi"
    assert h.friendly("int('z')") == ("int('z')\r\nTraceback (most recent call last):\r\n"
                                      '  File "<stdin>", line 1, in <module>\r\n'
                                      "ValueError: invalid syntax for integer with base 10\r\n")
    assert h.friendly("undefined_name") == (
        "undefined_name\r\nTraceback (most recent call last):\r\n"
        '  File "<stdin>", line 1, in <module>\r\n'
        "NameError: name 'undefined_name' isn't defined\r\n")
    assert h.friendly("1 +") == ("1 +\r\nTraceback (most recent call last):\r\n"
                                 '  File "<stdin>", line 1\r\nSyntaxError: invalid syntax\r\n')
    assert h.friendly("f'{a}'").endswith("SyntaxError: invalid syntax\r\n")
    assert h.friendly("raise KeyError('k')").endswith("\r\nKeyError: k\r\n")
    assert h.friendly("open('/sd/none')").endswith("\r\nOSError: [Errno 2] ENOENT\r\n")
    assert h.friendly("import nothere").endswith("\r\nImportError: no module named 'nothere'\r\n")
    assert h.friendly("[].nope").endswith("AttributeError: 'list' object has no attribute 'nope'\r\n")


def test_multiline_compound_statement_with_auto_indent(board):
    h = board().host
    h.send(b"def f(n):\r")
    assert h.read_until(b"...     ") == b"def f(n):\r\n...     "
    h.send(b"for i in range(n):\r")                 # auto-indent already typed 4 spaces
    assert h.read_until(b"...         ") == b"for i in range(n):\r\n...         "
    h.send(b"print(i)\r")
    assert h.read_until(b"...         ") == b"print(i)\r\n...         "
    h.send(b"\b")                                   # one backspace removes 4 spaces of indent
    assert h.read_until(b"\x1b[K") == b"\b\b\b\b\x1b[K"
    h.send(b"return n\r\r\r")                      # blank-ish lines until the indent runs out
    assert h.read_for(0.3) == b"return n\r\n...     \r\n...     \r\n... "
    h.send(b"\r")
    assert h.read_until(b">>> ") == b"\r\n>>> "
    assert h.friendly("f(2)") == "f(2)\r\n0\r\n1\r\n2\r\n"


def test_line_editing_backspace_and_ctrl_c_at_prompt(board):
    h = board().host
    h.send(b"1+2\x7f")
    assert h.read_until(b"\x1b[K") == b"1+2\b\x1b[K"
    assert h.friendly("3") == "3\r\n4\r\n"
    h.send(b"junk\x03")
    assert h.read_until(b">>> ") == b"junk\r\n>>> "
    h.send(b"\x1b[D\x1b[C")                          # arrows on an empty line: nothing
    assert h.friendly("7") == "7\r\n7\r\n"
    h.send(b"\x1b[A")                               # history: the previous line comes back
    assert h.read_until(b"7") == b"7"
    assert h.friendly("") == "\r\n7\r\n"


def test_raw_repl_framing_byte_exact(board):
    h = board().host
    h.send(b"\x01")
    assert h.read_until(RAW_BANNER) == b"\r\n" + RAW_BANNER
    h.send(b"print(1)\x04")
    assert h.read_until(b"\x04>") == b"OK1\r\n\x04\x04>"
    h.send(b"print('a')\nprint('b', end='')\nraise ValueError('bad')\x04")
    assert h.read_until(b"\x04>") == (
        b"OKa\r\nb\x04Traceback (most recent call last):\r\n"
        b'  File "<stdin>", line 3, in <module>\r\nValueError: bad\r\n\x04>')
    h.send(b"import sys; sys.exit()\x04")
    assert h.read_until(b"\x04>") == b"OK\x04\x04>"
    h.send(b"junk\x03print(5)\x04")                   # Ctrl-C clears what came before
    assert h.read_until(b"\x04>") == b"OK5\r\n\x04\x04>"
    h.send(b"\x02")
    assert h.read_until(b">>> ") == b"\r\n" + MP_BANNER + b">>> "


def test_raw_paste_probe_is_not_understood_and_falls_back(board):
    """MaixPy predates raw-paste: \\x05 and A are program text, \\x01 restarts the raw REPL."""
    h = board().host
    h.enter_raw()
    h.send(b"\x05A\x01")
    assert h.read_until(b"w REPL; CTRL-B to exit\r\n>", 2) == RAW_BANNER
    assert h.raw_exec("print(2+2)") == (b"4\r\n", b"")


def test_ctrl_c_interrupts_runaway_loop_within_a_second(board):
    h = board().host
    h.send(b"while True: pass\r\r")
    h.read_until(b"... \r\n")
    time.sleep(0.2)
    t0 = time.monotonic()
    h.send(b"\x03")
    got = h.read_until(b">>> ", 1.0)
    assert time.monotonic() - t0 < 1.0
    assert got == (b"Traceback (most recent call last):\r\n"
                   b'  File "<stdin>", line 1, in <module>\r\nKeyboardInterrupt: \r\n>>> ')
    assert h.friendly("1") == "1\r\n1\r\n"


def test_ctrl_c_interrupts_sleep_and_stdin_read_in_raw_repl(board):
    h = board().host
    h.enter_raw()
    for code in (b"import time\ntime.sleep(30)", b"import sys\nsys.stdin.buffer.read(10)"):
        h.send(code + b"\x04")
        h.read_until(b"OK")
        time.sleep(0.15)
        t0 = time.monotonic()
        h.send(b"\x03")
        got = h.read_until(b"\x04>", 1.0)
        assert time.monotonic() - t0 < 1.0
        assert got.endswith(b"\x04Traceback (most recent call last):\r\n"
                            b'  File "<stdin>", line 2, in <module>\r\n'
                            b"KeyboardInterrupt: \r\n\x04>")


def test_user_code_catching_keyboard_interrupt(board):
    h = board().host
    h.enter_raw()
    h.send(b"try:\n while True:\n  pass\nexcept KeyboardInterrupt:\n print('caught')\x04")
    h.read_until(b"OK")
    time.sleep(0.1)
    h.send(b"\x03")
    assert h.read_until(b"\x04>", 1.0) == b"caught\r\n\x04\x04>"


def test_kbd_intr_lets_ctrl_c_through_to_stdin(board):
    h = board().host
    h.enter_raw()
    h.send(b"import sys, micropython\nmicropython.kbd_intr(-1)\nprint('R')\n"
           b"print(sys.stdin.buffer.read(3))\x04")
    h.read_until(b"R\r\n")
    h.send(b"\x03ab")
    assert h.read_until(b"\x04>") == b"b'\\x03ab'\r\n\x04\x04>"
    h.send(b"while True: pass\x04")                  # the next command has Ctrl-C again
    h.read_until(b"OK")
    h.send(b"\x03")
    assert h.read_until(b"\x04>", 1.0).endswith(b"KeyboardInterrupt: \r\n\x04>")


def test_stdin_buffer_binary_upload_is_byte_exact(board):
    b = board()
    h = b.host
    payload = os.urandom(256 * 1024) + bytes(range(256))
    h.enter_raw()
    h.send(b"import sys, micropython, uhashlib, ubinascii\nmicropython.kbd_intr(-1)\n"
           b"f = open('/sd/up.bin', 'wb')\nh = uhashlib.sha256()\nn = 0\nprint('READY')\n"
           b"while n < %d:\n b = sys.stdin.buffer.read(min(4096, %d - n))\n f.write(b)\n"
           b" h.update(b)\n n += len(b)\nf.close()\nprint(ubinascii.hexlify(h.digest()))\x04"
           % (len(payload), len(payload)))
    h.read_until(b"READY\r\n")
    h.send(payload)
    out = h.read_until(b"\x04>", 20)
    digest = hashlib.sha256(payload).hexdigest().encode()
    assert out == b"b'" + digest + b"'\r\n\x04\x04>"
    assert (b.storage.sd_dir / "up.bin").read_bytes() == payload


def test_soft_reset_from_friendly_reruns_scripts_and_clears_globals(board):
    b = board(flash_files={"boot.py": b"print('B')\n"}, sd=False)
    h = b.host
    h.friendly("x = 5")
    h.send(b"\x04")
    got = h.read_until(b">>> ")
    assert got == (b"\r\n[MaixPy]: soft reboot\r\n"
                   b"[MaixPy] gc heap=0x802ffd80-0x8037fd80(524288)\r\n[MaixPy] init end\r\n"
                   + BANNER_ART + b"B\r\n" + MP_BANNER + b">>> ")
    assert h.friendly("x").endswith("NameError: name 'x' isn't defined\r\n")


def test_soft_reset_from_raw_repl_stays_raw_and_skips_main(board):
    b = board(sd_files={"boot.py": b"print('B')\n", "main.py": b"print('M')\n"})
    h = b.host
    h.enter_raw()
    h.send(b"\x04")
    got = h.read_until(RAW_BANNER)
    assert got.startswith(b"OK\r\n[MaixPy]: soft reboot\r\n")
    assert got.endswith(BANNER_ART + b"B\r\n" + RAW_BANNER)
    assert b"M\r\n" not in got
    assert h.raw_exec("print(3)") == (b"3\r\n", b"")


def test_paste_mode_echo_and_execution(board):
    h = board().host
    h.send(b"\x05")
    assert h.read_until(b"=== ") == b"\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== "
    h.send(b"x = 2\rif x:\r    print('yes', x)\r\x04")
    assert h.read_until(b">>> ") == (b"x = 2\r\n=== if x:\r\n===     print('yes', x)\r\n=== "
                                     b"\r\nyes 2\r\n>>> ")
    h.send(b"\x05print('no')\x03")
    assert h.read_until(b">>> ").endswith(b"=== print('no')\r\n>>> ")


def test_ctrl_c_during_boot_window_skips_boot_scripts(board):
    b = board(start=False, sd_files={"main.py": b"print('M')\n"})
    b.start(wait_prompt=False)
    b.host.read_until(b"[MaixPy] init end\r\n")
    b.host.send(b"\x03")
    got = b.host.read_until(b">>> ")
    assert got == (b"Traceback (most recent call last):\r\n"
                   b'  File "_boot.py", line 18, in <module>\r\nKeyboardInterrupt: \r\n'
                   + MP_BANNER + b">>> ")


def test_halt_stops_everything_within_half_a_second(board):
    b = board()
    h = b.host
    h.enter_raw()
    h.send(b"while True:\n try:\n  while True:\n   pass\n except BaseException:\n  pass\n"
           b" finally:\n  pass\x04")
    h.read_until(b"OK")
    time.sleep(0.2)
    assert b.stop() < 0.5


def test_halt_while_sleeping_and_at_prompt(board):
    b = board()
    b.host.send(b"import time; time.sleep(60)\r")
    time.sleep(0.2)
    assert b.stop() < 0.5
    assert board().stop() < 0.5


def test_repl_uart_baud_switch_after_the_reply(board):
    b = board()
    h = b.host
    h.enter_raw()
    out, err = h.raw_exec("from machine import UART\nu = UART.repl_uart()\n"
                          "u.init(1500000, 8, None, 1, timeout=1000, read_buf_len=4096)\nprint(u)")
    assert (out, err) == (b"[MAIXPY]UART5:( baudrate=1500000, bits=8, parity=None, stop=1)\r\n",
                          b"")
    assert b.uart.baud_log == [] or b.uart.baud_log[0][1] == b.uart.sent
    assert h.raw_exec("print(1)") == (b"1\r\n", b"")
    assert b.uart.baud == 1500000
    (baud, sent_before), = b.uart.baud_log
    assert baud == 1500000 and sent_before > 0
    _, err = h.raw_exec("from machine import UART\nUART.repl_uart().init(9000000)")
    assert err.endswith(b"ValueError: [MAIXPY]UART:invalid baudrate\r\n")


def test_machine_reset_asks_the_board_for_a_reset(board):
    b = board()
    b.host.enter_raw()
    b.host.send(b"import machine\nprint('bye')\nmachine.reset()\x04")
    b.host.read_until(b"OKbye\r\n")
    b.wait_stopped(2)
    assert b.resets == ["machine.reset()"]


def test_gc_heap_size_is_stored_and_applies_next_boot(board, tmp_path):
    """Maix_utils.c: gc_heap_size(n) saves n in /flash/freq.conf and returns None; no reboot."""
    storage = FakeStorage(tmp_path / "st")
    b = board(storage=storage)
    b.host.enter_raw()
    assert b.host.raw_exec("from Maix import utils\nprint(utils.gc_heap_size(0x40000), utils.gc_heap_size())") \
        == (b"None 262144\r\n", b"")
    assert b.resets == [] and storage.gc_heap_size() == 0x40000
    b.stop()
    b2 = board(start=False, storage=storage)
    b2.start(wait_prompt=False)
    assert b"gc heap=0x802ffd80-0x8033fd80(262144)" in b2.host.read_until(b">>> ")


def test_too_big_gc_heap_falls_back_to_128k(board, tmp_path):
    storage = FakeStorage(tmp_path / "st")
    storage.set_gc_heap_size(8 * 1024 * 1024)
    b = board(start=False, storage=storage)
    b.start(wait_prompt=False)
    got = b.host.read_until(b">>> ")
    # the failed sbrk logs first (SDK syscalls.c sys_brk), then mp_task falls back
    assert re.search(rb"\[MAIXPY\] Flash:0xc8:0x17\r\n\x1b\[0;31mE \(\d+\) SYSCALL: Out of memory\r\n"
                     rb"\x1b\[0m\nGC heap size 8388608 is too large, reset GC heap size\r\n"
                     rb"GC size 128k\r\n\[MaixPy\] gc heap=0x802ffd80-0x8031fd80\(131072\)\r\n", got), got


def test_input_builtin_reads_an_edited_line(board):
    h = board().host
    h.enter_raw()
    h.send(b"s = input('name? ')\nprint(repr(s))\x04")
    h.read_until(b"name? ")
    h.send(b"abx\bc\r")
    assert h.read_until(b"\x04>") == b"abx\b\x1b[Kc\r\n'abc'\r\n\x04\x04>"


def test_help_text(board):
    h = board().host
    out = h.friendly("help()")
    assert out.startswith("help()\r\nWelcome to MicroPython on the Sipeed Maix!\r\n\r\n")
    assert "  CTRL-D        -- on a blank line, do a soft reset of the board\r\n" in out
    assert "KPU" in h.friendly("help('modules')")


def test_halt_before_run_returns_at_once(board):
    b = board(start=False)
    b.fw.halt()
    t0 = time.monotonic()
    b.fw.run()
    assert time.monotonic() - t0 < 0.5
    assert b.uart.take(0.05) == b""
