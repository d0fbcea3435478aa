"""MaixPy firmware emulation: the restricted namespace, emulated modules, files on /flash and /sd."""
from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import pytest

from k210sim.maixpy.firmware import DEFAULT_MAIN_PY
from maixpy_fakes import Board


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """One board in the raw REPL for the whole module (escape attempts must not break it)."""
    tmp = tmp_path_factory.mktemp("sandbox")
    b = Board(tmp / "b")
    secret = tmp / "secret.txt"
    secret.write_text("host secret")
    os.symlink(tmp, b.storage.sd_dir / "escape")            # a link out of the card
    os.symlink(secret, b.storage.flashfs_root / "secret")   # and out of /flash
    b.start()
    b.host.enter_raw()
    yield b
    b.stop()


def last_line(err: bytes) -> str:
    return err.decode().rstrip("\r\n").split("\r\n")[-1]


ESCAPES = [
    ("import socket", "ImportError: no module named 'socket'"),
    ("import subprocess", "ImportError: no module named 'subprocess'"),
    ("import _thread", "ImportError: no module named '_thread'"),
    ("import ctypes", "ImportError: no module named 'ctypes'"),
    ("import os\nos.system('id')", "AttributeError: 'module' object has no attribute 'system'"),
    ("import os\nos.popen", "AttributeError: 'module' object has no attribute 'popen'"),
    ("__import__('os').system", "AttributeError: 'module' object has no attribute 'system'"),
    ("eval('__import__')('subprocess')", "ImportError: no module named 'subprocess'"),
    ("exec('import os as o; o.system')", "AttributeError: 'module' object has no attribute 'system'"),
    ("open('/etc/passwd')", "OSError: [Errno 2] ENOENT"),
    ("open('/sd/../../etc/passwd')", "OSError: [Errno 2] ENOENT"),
    ("open('../../../../etc/passwd')", "OSError: [Errno 2] ENOENT"),
    ("open('/sd/escape/secret.txt')", "OSError: [Errno 2] ENOENT"),
    ("open('/flash/secret')", "OSError: [Errno 2] ENOENT"),
    ("import os\nos.listdir('/sd/escape')", "OSError: [Errno 2] ENOENT"),
    ("import os\nos.chdir('/etc')", "OSError: [Errno 2] ENOENT"),
    ("().__class__.__subclasses__()", "AttributeError: type object 'tuple' has no attribute '__subclasses__'"),
    ("().__class__.__bases__[0].__subclasses__()", "AttributeError: type object 'tuple' has no attribute '__bases__'"),
    ("object.__subclasses__()", "AttributeError: type object 'object' has no attribute '__subclasses__'"),
    ("type.__subclasses__(object)", "AttributeError: type object 'type' has no attribute '__subclasses__'"),
    ("type(1).mro()", "AttributeError: type object 'int' has no attribute 'mro'"),
    ("(lambda: 0).__globals__", "AttributeError: 'function' object has no attribute '__globals__'"),
    ("print.__self__", "AttributeError: 'function' object has no attribute '__self__'"),
    ("getattr(print, '__self__')", "AttributeError: 'function' object has no attribute '__self__'"),
    ("getattr(open, '__globals__')", "AttributeError: 'function' object has no attribute '__globals__'"),
    ("def g():\n yield 1\ng().gi_frame", "AttributeError: 'generator' object has no attribute 'gi_frame'"),
    ("def g():\n yield 1\ngetattr(g(), 'gi_frame').f_globals", "AttributeError: 'generator' object has no attribute 'gi_frame'"),
    ("def f(): pass\nf.__code__", "AttributeError: 'function' object has no attribute '__code__'"),
    ("__builtins__", "NameError: name '__builtins__' isn't defined"),
    ("__loader__", "NameError: name '__loader__' isn't defined"),
    ("try:\n 1/0\nexcept Exception as e:\n e.__traceback__.tb_frame.f_globals",
     "AttributeError: 'ZeroDivisionError' object has no attribute '__traceback__'"),
    ("'{0.__class__.__init__.__globals__}'.format(1)", "AttributeError: type object 'int' has no attribute '__init__'"),
    ("'{0.__globals__}'.format(print)", "AttributeError: 'function' object has no attribute '__globals__'"),
    ("str.format('{0.__self__}', print)", "AttributeError: 'function' object has no attribute '__self__'"),
    ("'{0._m}'.format(open('/sd/x.txt', 'w'))", "AttributeError: 'MpFile' object has no attribute '_m'"),
    ("globals()['_getattr_']", "KeyError: _getattr_"),
    ("import sys\nsys.modules['os']", "KeyError: os"),
    ("f = open('/sd/y.txt', 'w')\nf._fh", "AttributeError: 'MpFile' object has no attribute '_fh'"),
    ("f = open('/sd/y.txt', 'w')\ntype(f)(0, 0, 0, 0, '/etc/passwd')", "TypeError: cannot create instances"),
    ("import KPU\nKPU.load.__closure__", "AttributeError: 'function' object has no attribute '__closure__'"),
    ("import sys\nsys.stdin._rt", "AttributeError: '_Stdin' object has no attribute '_rt'"),
    ("class A(type(open('/sd/z.txt','w'))): pass", "TypeError: type is not an acceptable base type"),
    ("type('X', (), {'__del__': print})", "TypeError: can't define '__del__' on the simulated board"),
    ("import os\nos.listdir = 1", "AttributeError: 'module' object has no attribute 'listdir'"),
    ("setattr(print, 'x', 1)", "AttributeError: 'function' object has no attribute 'x'"),
    ("vars", "NameError: name 'vars' isn't defined"),
    ("compile", "NameError: name 'compile' isn't defined"),
    ("breakpoint()", "NameError: name 'breakpoint' isn't defined"),
    ("f'{1}'", "SyntaxError: invalid syntax"),
    ("(y := 3)", "SyntaxError: invalid syntax"),
    ("async def f(): pass", "SyntaxError: invalid syntax"),
    ("_getattr_ = getattr", "SyntaxError: name '_getattr_' is reserved on the simulated board"),
]


@pytest.mark.parametrize("code,expected", ESCAPES, ids=[c for c, _ in ESCAPES])
def test_escape_attempts_fail_like_the_board(raw, code, expected):
    out, err = raw.host.raw_exec(code)
    assert last_line(err) == expected
    assert b"/tmp" not in out + err and b"secret" not in (out + err).replace(b"'secret'", b"")


def test_board_still_works_after_the_escape_attempts(raw):
    assert raw.host.raw_exec("print(1 + 1)") == (b"2\r\n", b"")


REALISTIC = r'''
import os, ustruct, uhashlib, ubinascii, sys, gc

class Counter:
    total = 0
    def __init__(self, start=0):
        self._n = start
        self.__secret = 7
        self.log = []
    def bump(self, k=1):
        self._n += k
        self.log += [k]
        Counter.total += k
        return self
    def secret(self):
        return self.__secret
    def __repr__(self):
        return "Counter(%d)" % self._n
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        print("exit", self._n)
        return False

def squares(n):
    for i in range(n):
        yield i * i

def make_adder(k):
    acc = [0]
    def add(x):
        nonlocal k
        k += 0
        acc[0] += x + k
        return acc[0]
    return add

ticks = 0
def tick():
    global ticks
    ticks += 1

with Counter(1) as c:
    c.bump().bump(5)
    for _ in range(3):
        tick()
print(c, c.secret(), c.log, Counter.total, ticks)
print(list(squares(5)), sum(x for x in squares(4)), [x for x in squares(3) if x])
add = make_adder(10)
add(1); print(add(2))
d = {'a': [1, 2]}
d['a'][0] *= 5
d['b'] = d.get('b', 0) + 1
print(sorted(d.items()))
try:
    try:
        {}['missing']
    except KeyError as e:
        print('KeyError', e)
        raise ValueError('again')
    finally:
        print('finally')
except ValueError as e:
    print(type(e).__name__, e.args)

buf = bytearray(8)
ustruct.pack_into('<HI', buf, 0, 0x1234, 0xdeadbeef)
mv = memoryview(buf)
print(ubinascii.hexlify(bytes(mv[:6])), ustruct.unpack('<HI', buf[:6]), ustruct.calcsize('<HI'))
h = uhashlib.sha256()
with open('/sd/data.bin', 'wb') as f:
    for i in range(4):
        chunk = bytes([i]) * 1000
        f.write(chunk)
        h.update(chunk)
print(ubinascii.hexlify(h.digest())[:16], os.stat('/sd/data.bin')[6])
with open('/sd/data.bin', 'rb') as f:
    f.seek(1500)
    print(f.tell(), f.read(3), len(f.read()))
with open('/flash/notes.txt', 'w') as f:
    f.write('line1\nline2\n')
print([l for l in open('/flash/notes.txt')])
print('%s=%d %5.2f' % ('x', 3, 2.5), '{}-{:>4}-{k}'.format(1, 'ab', k=[1]))
sys.stdout.write('raw write\n')
print('no newline', end='')
print()
print(isinstance(c, Counter), isinstance(3, (int, float)), issubclass(bool, int))
print(b'ab' + bytes(2), bytearray(b'xy') * 2, b'abc'.hex() if hasattr(b'', 'hex') else '')
print(os.listdir('/sd'), 'notes.txt' in os.listdir('/flash'))
gc.collect()
print(gc.mem_free() > 0, gc.mem_alloc() > 0)
'''

REALISTIC_OUT = (
    "exit 7\r\n"
    "Counter(7) 7 [1, 5] 6 3\r\n"
    "[0, 1, 4, 9, 16] 14 [1, 4]\r\n"
    "23\r\n"
    "[('a', [5, 2]), ('b', 1)]\r\n"
    "KeyError 'missing'\r\n"      # str(e) is CPython's here; tracebacks print MicroPython's
    "finally\r\n"
    "ValueError ('again',)\r\n"
    "b'3412efbeadde' (4660, 3735928559) 6\r\n"
    "b'%s' 4000\r\n"
    "1500 b'\\x01\\x01\\x01' 2497\r\n"
    "['line1\\n', 'line2\\n']\r\n"
    "x=3  2.50 1-  ab-[1]\r\n"
    "raw write\r\n"
    "no newline\r\n"
    "True True True\r\n"
    "b'ab\\x00\\x00' bytearray(b'xyxy') 616263\r\n"
    "['data.bin', 'main.py'] True\r\n"
    "True True\r\n"
)


def test_realistic_micropython_program_runs(tmp_path):
    b = Board(tmp_path / "b").start()
    try:
        b.host.enter_raw()
        out, err = b.host.raw_exec(REALISTIC)
        assert err == b""
        h = hashlib.sha256(b"".join(bytes([i]) * 1000 for i in range(4))).hexdigest()[:16]
        assert out.decode() == REALISTIC_OUT % h
        assert (b.storage.flashfs_root / "notes.txt").read_text() == "line1\nline2\n"
    finally:
        b.stop()


def test_exec_and_eval_inside_functions(raw):
    out, err = raw.host.raw_exec("def f(a):\n b = a * 2\n exec('print(a, b)')\n"
                                 " return eval('a + b'), eval('a * 2', None, {'a': 10})\nprint(f(3))\n"
                                 "g = {}\nexec('x = 5', g)\nprint(g['x'], eval('x * 2', g))")
    assert (out, err) == (b"3 6\r\n(9, 20)\r\n5 10\r\n", b"")


def test_tracebacks_name_files_and_functions(tmp_path):
    b = Board(tmp_path / "b")
    (b.storage.flashfs_root / "helper.py").write_text("def boom(x):\n    return 10 // x\n")
    b.start()
    try:
        b.host.enter_raw()
        out, err = b.host.raw_exec("import helper\ndef outer():\n    helper.boom(0)\nouter()")
        assert err == (b"Traceback (most recent call last):\r\n"
                       b'  File "<stdin>", line 4, in <module>\r\n'
                       b'  File "<stdin>", line 3, in outer\r\n'
                       b'  File "/flash/helper.py", line 2, in boom\r\n'
                       b"ZeroDivisionError: divide by zero\r\n")
        _, err = b.host.raw_exec("import sys\ntry:\n 'a' + 1\nexcept TypeError as e:\n"
                                 " sys.print_exception(e)\n print(str(e))")
        assert err == b""
    finally:
        b.stop()


def test_os_module_over_flash_and_sd(tmp_path):
    b = Board(tmp_path / "b").start()
    try:
        h = b.host
        h.enter_raw()
        run = h.raw_exec
        assert run("import os\nos.mkdir('/sd/d')\nos.chdir('/sd/d')\nprint(os.getcwd())") == \
            (b"/sd/d\r\n", b"")
        assert run("with open('f.txt', 'w') as f:\n f.write('hello')\n"
                   "print(os.listdir(), os.stat('f.txt'))") == \
            (b"['f.txt'] (32768, 0, 0, 0, 0, 0, 5, %d, %d, %d)\r\n"
             % ((int(os.stat(b.storage.sd_dir / "d" / "f.txt").st_mtime) - 946684800,) * 3), b"")
        assert run("print(list(os.ilistdir('/sd')), list(os.ilistdir('/')))") == \
            (b"[('d', 16384, 0, 0), ('main.py', 32768, 0, %d)] [('flash', 16384, 0), ('sd', 16384, 0)]\r\n"
             % len(DEFAULT_MAIN_PY), b"")     # _boot.py wrote its default main.py in the cwd, /sd
        assert last_line(run("os.rmdir('/sd/d')")[1]) == "OSError: [Errno 13] EACCES"
        assert last_line(run("os.remove('/sd/d')")[1]) == "OSError: [Errno 21] EISDIR"
        assert last_line(run("os.rmdir('/sd/d/f.txt')")[1]) == "OSError: 20"
        assert last_line(run("os.mkdir('/sd/d')")[1]) == "OSError: [Errno 17] EEXIST"
        assert run("os.rename('f.txt', 'g.txt')\nos.remove('g.txt')\nos.chdir('..')\n"
                   "os.rmdir('d')\nprint(os.listdir('/sd'))") == (b"['main.py']\r\n", b"")
        out, _ = run("s = os.statvfs('/flash')\nprint(s[0], s[2] * s[0], s[9])")
        assert out == b"131072 2752512 128\r\n"    # SPIFFS: 128 KiB blocks, 21 of them (vfs_spiffs.c)
        assert run("print(os.stat('/'))") == (b"(16384, 0, 0, 0, 0, 0, 0, 0, 0, 0)\r\n", b"")
        assert run("import sys\nprint(sys.implementation.name, sys.platform, sys.path)") == \
            (b"micropython MaixPy ['', '.', '/sd', '/flash']\r\n", b"")
    finally:
        b.stop()


def test_sd_absent_and_pulled_out(tmp_path):
    b = Board(tmp_path / "nocard", sd=False).start()
    try:
        b.host.enter_raw()
        assert b.host.raw_exec("import os\nprint(os.listdir('/'), os.getcwd())") == \
            (b"['flash'] /flash\r\n", b"")
        assert last_line(b.host.raw_exec("open('/sd/m.kmodel', 'rb')")[1]) == \
            "OSError: [Errno 2] ENOENT"
    finally:
        b.stop()
    b = Board(tmp_path / "card").start()
    try:
        b.host.enter_raw()
        b.storage.sd_present = False                      # pulled out after boot
        assert last_line(b.host.raw_exec("import os\nos.listdir('/sd')")[1]) == \
            "OSError: [Errno 5] EIO"
    finally:
        b.stop()


def test_modules_and_their_micropython_faces(tmp_path):
    b = Board(tmp_path / "b").start()
    try:
        h = b.host
        h.enter_raw()
        run = h.raw_exec
        assert run("import ujson, json\nprint(ujson is json, json.dumps({'a': [1, None, True]}), "
                   "json.loads('[1, 2.5]'))") == (b'True {"a": [1, null, true]} [1, 2.5]\r\n', b"")
        assert run("import ubinascii\nprint(ubinascii.unhexlify('0aff'), ubinascii.b2a_base64(b'hi'),"
                   " ubinascii.a2b_base64(b'aGk='), ubinascii.crc32(b'abc'))") == \
            (b"b'\\n\\xff' b'aGk=\\n' b'hi' 891568578\r\n", b"")
        assert last_line(run("import uhashlib\nuhashlib.sha1")[1]) == \
            "AttributeError: 'module' object has no attribute 'sha1'"
        assert run("import utime as t, time\nprint(t is time, t.ticks_diff(5, t.ticks_add(5, -3)),"
                   " t.localtime(0))") == (b"True 3 (2000, 1, 1, 0, 0, 0, 5, 1)\r\n", b"")
        assert run("import micropython\nprint(micropython.const(5))\nmicropython.mem_info()")[0] \
            .startswith(b"5\r\nstack: 736 out of 15360\r\nGC: total: 518144, used: ")
        assert run("import uerrno, errno\nprint(errno.ENOENT, uerrno.errorcode[2])") == \
            (b"2 ENOENT\r\n", b"")
        assert run("import ucollections\nP = ucollections.namedtuple('P', ('x', 'y'))\n"
                   "print(P(1, 2).y, ucollections.OrderedDict([(1, 2)]))") == \
            (b"2 OrderedDict({1: 2})\r\n", b"")
        assert run("import array, math, urandom\na = array.array('h', [1, -2])\n"
                   "print(a[1], math.sqrt(16), 0 <= urandom.getrandbits(8) < 256)") == \
            (b"-2 4.0 True\r\n", b"")
        out, _ = run("import machine\nprint(len(machine.unique_id()), machine.reset_cause())")
        assert out == b"32 0\r\n"
        assert run("import Maix\nprint(Maix, Maix.utils)") == \
            (b"<module 'machine'> <class 'utils'>\r\n", b"")
        assert last_line(run("import kpu")[1]) == "ImportError: no module named 'kpu'"
        assert last_line(run("import utils")[1]) == "ImportError: no module named 'utils'"
        out, _ = run("import os\nprint(os.uname().machine)")
        assert out == b"Sipeed_M1 with kendryte-k210\r\n"
    finally:
        b.stop()


def test_gc_mem_free_follows_allocations(tmp_path):
    b = Board(tmp_path / "b").start()
    try:
        b.host.enter_raw()
        run = b.host.raw_exec
        free0 = int(run("import gc\ngc.collect()\nprint(gc.mem_free())")[0])
        free1 = int(run("big = bytearray(100000)\nprint(gc.mem_free())")[0])
        free2 = int(run("del big\ngc.collect()\nprint(gc.mem_free())")[0])
        assert free1 < free0 - 90000
        assert abs(free2 - free0) < 4096
        # 32-byte blocks after gc_init's tables: 518144 of the 512 KiB heap (py/gc.c gc_init)
        assert int(run("print(gc.mem_free() + gc.mem_alloc())")[0]) == 518144
    finally:
        b.stop()


def test_struct_helpers_for_kmodel_headers(tmp_path):
    """The on-board model writer relies on ustruct falling back to struct and bytes ops."""
    b = Board(tmp_path / "b").start()
    try:
        b.host.enter_raw()
        out, err = b.host.raw_exec("try:\n import ustruct as struct\nexcept ImportError:\n"
                                   " import struct\nprint(struct.pack('<7I', 3, 0, 0, 1, 0, 64, 1))")
        assert err == b""
        assert out == repr(struct.pack("<7I", 3, 0, 0, 1, 0, 64, 1)).encode() + b"\r\n"
    finally:
        b.stop()


def test_onboard_writer_snippet_writes_the_model(tmp_path):
    from hil.kmodel.build import build_v3
    from hil.device.micropython.code.kmodel_writer import writer_snippet
    b = Board(tmp_path / "b").start()
    try:
        b.host.enter_raw()
        size, main_mem, seed = 20000, 65536, 3
        out, err = b.host.raw_exec(writer_snippet("/sd/w.kmodel", size, main_mem, seed), timeout=30)
        assert err == b""
        expected = build_v3(size, main_mem, seed)
        assert (b.storage.sd_dir / "w.kmodel").read_bytes() == expected
        assert out.strip().decode() == hashlib.sha256(expected).hexdigest()
    finally:
        b.stop()


def test_symlinked_card_directory_inside_the_card_is_fine(tmp_path):
    b = Board(tmp_path / "b")
    (b.storage.sd_dir / "real").mkdir()
    (b.storage.sd_dir / "real" / "a.txt").write_text("A")
    os.symlink(b.storage.sd_dir / "real", b.storage.sd_dir / "alias")
    b.start()
    try:
        b.host.enter_raw()
        assert b.host.raw_exec("print(open('/sd/alias/a.txt').read())") == (b"A\r\n", b"")
    finally:
        b.stop()


def test_file_objects_behave_like_micropython(tmp_path: Path):
    b = Board(tmp_path / "b").start()
    try:
        b.host.enter_raw()
        run = b.host.raw_exec
        out, err = run("f = open('/sd/t.bin', 'w+b')\nf.write(b'0123456789')\nf.seek(2)\n"
                       "buf = bytearray(4)\nprint(f.readinto(buf), buf, f.tell(), f)\nf.close()\n"
                       "print(open('/sd/t.bin').read(3))")
        assert err == b""
        lines = out.decode().split("\r\n")
        assert lines[0].startswith("4 bytearray(b'2345') 6 <io.FileIO ")
        assert lines[1] == "012"
        assert last_line(run("f.read()")[1]) == "OSError: [Errno 9] EBADF"
        assert last_line(run("open('/sd/t.bin', 'q')")[1]) == "ValueError: invalid mode"
        assert last_line(run("open('/sd/t.bin', 'rb').write(b'x')")[1]) == "OSError: [Errno 5] EIO"
        assert last_line(run("open('/sd', 'w')")[1]) == "OSError: [Errno 21] EISDIR"
    finally:
        b.stop()


def test_spoofing_class_is_not_taken_for_a_registered_one():
    from k210sim.maixpy.sandbox import IdentityRegistry

    class Host:
        pass

    class Liar:
        def __eq__(self, other):
            return True

        def __hash__(self):
            return hash(Host)

    reg = IdentityRegistry()
    reg.add(Host)
    assert Host in reg and Liar() not in reg and object() not in reg
    del Host
    import gc
    gc.collect()
    assert len(reg) == 0


class _BrownoutOnce:
    """FaultHooks.kpu_load's contract: True when the board browns out now (it asked for a reset)."""

    def __init__(self, ctx):
        self.ctx, self.calls = ctx, []

    def kpu_load(self, source):
        self.calls.append(source)
        if len(self.calls) == 1:
            self.ctx.request_reset("fault: brownout during kpu.load")
            return True
        return False


def test_brownout_fault_fires_inside_kpu_load(tmp_path):
    b = Board(tmp_path / "b")
    b.ctx.faults = _BrownoutOnce(b.ctx)
    b.start()
    b.host.enter_raw()
    b.host.send("import KPU as kpu\nprint('before')\nkpu.load('/sd/m.kmodel')\nprint('after')\x04")
    b.wait_stopped()                       # the board reset under the command: run() returned
    out = b.host.read_for(0.2)
    assert b.resets == ["fault: brownout during kpu.load"]
    assert b.ctx.faults.calls == ["/sd/m.kmodel"]
    assert b"before" in out and b"after" not in out and b"Traceback" not in out
