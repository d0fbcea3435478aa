"""Escape attempts from the simulated MaixPy's REPL namespace, through the real simulator.

Every attempt runs as user code on one simulated board (SimServer + Board, raw REPL over the pty),
and must fail the way the board fails (the exception's last traceback line is given), without a
host secret, host path or host module name in what comes back. Planted on the host for the
attempts: a secret file outside the board's storage, and symlinks to it from /sd and /flash.

A hole found and not yet closed is a case with ``xfail=<reason and fix>`` (a strict xfail, so it
flips to a failure the day the hole is closed and the mark gets removed). None are open now: the
metaclass spoof of the user-class registry, the real ``type`` and the host names in repr()/help()
were closed in k210sim/maixpy/sandbox.py.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from hil.board import Board
from hil.link import SerialLog
from hil.rig import load_rig

RIGS = Path(__file__).resolve().parent.parent / "rigs"
pytest.importorskip("k210sim.maixpy", reason="the simulated MaixPy firmware is not built yet")

SECRET = "host-secret-5f3a"

@dataclass(frozen=True)
class Case:
    id: str
    code: str
    error: str | None            # the traceback's last line; None: must run without one
    out: str | None = None       # stdout expected (when given)
    xfail: str = ""


def c(id: str, code: str, error: str | None, out: str | None = None, xfail: str = "") -> Case:
    return Case(id, code, error, out, xfail)


ENOENT = "OSError: [Errno 2] ENOENT"
NO_ATTR = "AttributeError: 'function' object has no attribute '{}'"

CASES = [
    # importing host modules
    c("import-socket", "import socket", "ImportError: no module named 'socket'"),
    c("import-subprocess", "import subprocess", "ImportError: no module named 'subprocess'"),
    c("import-ctypes", "import ctypes", "ImportError: no module named 'ctypes'"),
    c("import-builtins", "import builtins", "ImportError: no module named 'builtins'"),
    c("import-importlib", "import importlib", "ImportError: no module named 'importlib'"),
    c("import-io", "import io", "ImportError: no module named 'io'"),
    c("import-posix", "import posix", "ImportError: no module named 'posix'"),
    c("import-hil", "import hil", "ImportError: no module named 'hil'"),
    c("import-os-path", "import os.path", "ImportError: no module named 'os.path'"),
    c("os-system", "import os\nos.system('id')", "AttributeError: 'module' object has no attribute 'system'"),
    c("sys-modules-host", "import sys\nsys.modules['builtins']", "KeyError: builtins"),
    c("host-stdlib-on-sys-path", "import sys\nsys.path.insert(0, '/usr/lib/python3')\nimport this",
      "ImportError: no module named 'this'"),
    # __import__
    c("dunder-import-subprocess", "__import__('subprocess')", "ImportError: no module named 'subprocess'"),
    c("dunder-import-pty", "__import__('pty')", "ImportError: no module named 'pty'"),
    c("eval-dunder-import", "eval('__import__')('os').popen",
      "AttributeError: 'module' object has no attribute 'popen'"),
    c("exec-import", "exec('import ctypes')", "ImportError: no module named 'ctypes'"),
    c("exec-fake-builtins", "exec('import os\\nos.system', {'__builtins__': {}})",
      "AttributeError: 'module' object has no attribute 'system'"),
    # open() of host paths and .. paths
    c("open-etc-passwd", "open('/etc/passwd')", ENOENT),
    c("open-sd-dotdot", "open('/sd/../../etc/passwd')", ENOENT),
    c("open-flash-dotdot", "open('/flash/../../../etc/passwd')", ENOENT),
    c("open-relative-dotdot", "import os\nos.chdir('/sd')\nopen('../../../../etc/passwd')", ENOENT),
    c("open-proc", "open('/proc/self/environ')", ENOENT),
    c("open-fd", "open(0)", "TypeError: can't convert 'int' object to str implicitly"),
    c("open-nul", "open('/sd/a\\x00b')", ENOENT),
    c("open-symlink-out-of-sd", "open('/sd/escape/secret.txt')", ENOENT),
    c("open-symlink-out-of-flash", "open('/flash/secret')", ENOENT),
    c("listdir-symlink", "import os\nos.listdir('/sd/escape')", ENOENT),
    c("stat-host", "import os\nos.stat('/proc/self/environ')", ENOENT),
    c("rename-out", "open('/sd/r.txt', 'w').close()\nimport os\nos.rename('/sd/r.txt', '/sd/../../../tmp/x')",
      ENOENT),
    c("rmdir-mount", "import os\nos.rmdir('/flash')", "OSError: [Errno 13] EACCES"),
    # __subclasses__ walks
    c("tuple-subclasses", "().__class__.__bases__[0].__subclasses__()",
      "AttributeError: type object 'tuple' has no attribute '__bases__'"),
    c("object-subclasses", "object.__subclasses__()",
      "AttributeError: type object 'object' has no attribute '__subclasses__'"),
    c("getattr-subclasses", "getattr(object, '__subclasses__')()",
      "AttributeError: type object 'object' has no attribute '__subclasses__'"),
    c("int-base", "int.__base__", "AttributeError: type object 'int' has no attribute '__base__'"),
    c("mro", "(1).__class__.__mro__", "AttributeError: type object 'int' has no attribute '__mro__'"),
    c("mro-method", "type(1).mro()", "AttributeError: type object 'int' has no attribute 'mro'"),
    # attribute tricks to reach the host's os/sys
    c("print-self", "print.__self__", NO_ATTR.format("__self__")),
    c("open-self", "open.__self__", NO_ATTR.format("__self__")),
    c("import-self", "__import__.__self__", NO_ATTR.format("__self__")),
    c("help-globals", "help.__globals__", NO_ATTR.format("__globals__")),
    c("module-func-globals", "import os\nos.listdir.__globals__", NO_ATTR.format("__globals__")),
    c("machine-reset-globals", "import machine\nmachine.reset.__globals__", NO_ATTR.format("__globals__")),
    c("kpu-closure", "import KPU\nKPU.load.__closure__", NO_ATTR.format("__closure__")),
    c("file-private", "f = open('/sd/y.txt', 'w')\nf._fh", "AttributeError: 'MpFile' object has no attribute '_fh'"),
    c("file-vfs", "f = open('/sd/y.txt', 'w')\nf._vfs", "AttributeError: 'MpFile' object has no attribute '_vfs'"),
    c("stdin-private", "import sys\nsys.stdin._rt", "AttributeError: '_Stdin' object has no attribute '_rt'"),
    c("set-module-attr", "import os\nos.listdir = print",
      "AttributeError: 'module' object has no attribute 'listdir'"),
    # type(...) tricks
    c("type-of-file", "f = open('/sd/z.txt', 'w')\ntype(f)(0, 0, 0, 0, '/etc/passwd')",
      "TypeError: cannot create instances"),
    c("subclass-file", "class A(type(open('/sd/z.txt', 'w'))): pass",
      "TypeError: type is not an acceptable base type"),
    c("type3-del", "type('X', (), {'__del__': print})", "TypeError: can't define '__del__' on the simulated board"),
    c("type-bound-method", "type(print)(print, 1).__self__", NO_ATTR.format("__self__")),
    c("new-uninitialised-file", "class A: pass\nf = super(A, A()).__new__(type(open('/sd/z.txt', 'w')))\nf.read()",
      "AttributeError: 'MpFile' object has no attribute '_vfs'"),
    c("real-type-del", "type(int)('X', (), {'__del__': print})",
      "TypeError: can't define '__del__' on the simulated board"),
    c("real-type-getattribute", "(1).__class__.__class__('X', (), {'__getattribute__': print})",
      "TypeError: can't define '__getattribute__' on the simulated board"),
    c("metaclass", "class M(type(int)): pass", "TypeError: type is not an acceptable base type"),
    c("metaclass-spoof-host-file", "T = type(int)\nf = open('/sd/e.txt', 'w')\nH = hash(type(f))\n"
      "class M(T):\n    def __eq__(self, other):\n        return True\n    def __hash__(self):\n        return H\n"
      "X = M('X', (), {})\nclass U(X): pass\n"
      "p = f._vfs.resolve('/sd')[2]\nprint(p.joinpath({secret!r}).read_text())",
      "TypeError: type is not an acceptable base type"),
    # generator / frame / code objects
    c("gi-frame", "def g():\n    yield 1\ng().gi_frame",
      "AttributeError: 'generator' object has no attribute 'gi_frame'"),
    c("gi-frame-globals", "def g():\n    yield 1\ngetattr(g(), 'gi_frame').f_globals",
      "AttributeError: 'generator' object has no attribute 'gi_frame'"),
    c("gi-code", "def g():\n    yield 1\ng().gi_code", "AttributeError: 'generator' object has no attribute 'gi_code'"),
    c("func-code", "def f(): pass\nf.__code__", NO_ATTR.format("__code__")),
    c("lambda-code-consts", "(lambda: 0).__code__.co_consts", NO_ATTR.format("__code__")),
    # str.format attribute access
    c("format-class-globals", "'{0.__class__.__init__.__globals__}'.format(1)",
      "AttributeError: type object 'int' has no attribute '__init__'"),
    c("format-globals", "'{0.__globals__}'.format(print)", NO_ATTR.format("__globals__")),
    c("format-self", "str.format('{0.__self__}', print)", NO_ATTR.format("__self__")),
    c("format-private", "'{0._fh}'.format(open('/sd/x.txt', 'w'))",
      "AttributeError: 'MpFile' object has no attribute '_fh'"),
    c("format-map-builtins", "'{0[__builtins__]}'.format(globals())", "KeyError: __builtins__"),
    c("format-class-is-harmless", "print('{0.__class__}'.format(1))", None, out="<class 'int'>"),
    # getattr with dunder names
    c("getattr-self", "getattr(print, '__self__')", NO_ATTR.format("__self__")),
    c("getattr-globals", "getattr(open, '__globals__')", NO_ATTR.format("__globals__")),
    c("getattr-getattr-self", "getattr(getattr, '__self__')", NO_ATTR.format("__self__")),
    c("hasattr-self", "print(hasattr(print, '__self__'))", None, out="False"),
    # vars(), globals(), dir() walks
    c("vars", "vars()", "NameError: name 'vars' isn't defined"),
    c("vars-str", "vars(str)", "NameError: name 'vars' isn't defined"),
    c("globals-guard", "globals()['_getattr_']", "KeyError: _getattr_"),
    c("globals-builtins", "globals()['__builtins__']", "KeyError: __builtins__"),
    c("builtins-name", "__builtins__", "NameError: name '__builtins__' isn't defined"),
    c("loader-name", "__loader__", "NameError: name '__loader__' isn't defined"),
    c("dir-walk-print", "[getattr(print, n) for n in dir(print)]", NO_ATTR.format("__delattr__")),
    c("dir-walk-module", "import sys\n[getattr(sys, n) for n in dir(sys)]",
      "AttributeError: 'module' object has no attribute '__loader__'"),
    # exceptions' __traceback__
    c("traceback", "try:\n 1/0\nexcept Exception as e:\n e.__traceback__.tb_frame.f_globals",
      "AttributeError: 'ZeroDivisionError' object has no attribute '__traceback__'"),
    c("with-traceback", "try:\n 1/0\nexcept Exception as e:\n e.with_traceback",
      "AttributeError: 'ZeroDivisionError' object has no attribute 'with_traceback'"),
    c("exc-context", "try:\n 1/0\nexcept Exception as e:\n e.__context__",
      "AttributeError: 'ZeroDivisionError' object has no attribute '__context__'"),
    c("exit-tb-frame", "class A:\n    def __enter__(self):\n        return self\n"
      "    def __exit__(self, t, v, tb):\n        tb.tb_frame\nwith A():\n    1 / 0",
      "AttributeError: 'traceback' object has no attribute 'tb_frame'"),
    # bound methods: __func__.__globals__
    c("bound-func-globals", "class A:\n    def f(self): pass\nA().f.__func__.__globals__",
      "AttributeError: 'bound_method' object has no attribute '__func__'"),
    c("func-globals", "class A:\n    def f(self): pass\nA.f.__globals__", NO_ATTR.format("__globals__")),
    c("staticmethod-func", "staticmethod(print).__func__",
      "AttributeError: 'staticmethod' object has no attribute '__func__'"),
    # host names in reprs (information, not a way out)
    c("repr-import", "print(repr(__import__))", None, out="<function>"),
    c("help-open", "help(open)", None, out="object <function> is of type function"),
    c("repr-sleep", "import time\nprint(repr(time.sleep))", None, out="<function>"),
    c("repr-builtins-in-list", "print([print, open, len, [].append])", None,
      out="[<function>, <function>, <function>, <bound_method>]"),
    c("type-stand-in", "print(type, type(int), (1).__class__.__class__, type(type), type.__class__)", None,
      out="<class 'type'> <class 'type'> <class 'type'> <class 'type'> <class 'type'>"),
    c("type-stand-in-subclass", "class M(type): pass", "TypeError: type is not an acceptable base type"),
    c("type-stand-in-private", "type._guards", "AttributeError: type object 'type' has no attribute '_guards'"),
]

LEAKS = (SECRET, "/tmp", "/work", "/home", "hil.", "hil/", "build.<locals>", "Runtime", "Vfs")


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    from k210sim.server import SimServer
    tmp = tmp_path_factory.mktemp("escape")
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    sim = SimServer(tmp / "state", rfc2217=None, pace=False).start()
    try:
        os.symlink(outside, sim.storage.sd_root / "escape")
        os.symlink(outside / "secret.txt", sim.storage.flashfs_root / "secret")
        rig = load_rig("sim", RIGS)
        rig = replace(rig, sim=replace(rig.sim, pace="off"))
        b = Board(rig, results=tmp, log=SerialLog(tmp / "escape.log"), sim_endpoints=sim.endpoints)
        b.open()
        try:
            b.lifecycle.start()
            b.secret_path = str(outside / "secret.txt")
            yield b
        finally:
            b.close()
    finally:
        sim.stop()


def _param(case: Case):
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(x) for x in CASES])
def test_escape_attempt_fails(board, case: Case) -> None:
    code = case.code.replace("{secret!r}", repr(board.secret_path))
    try:
        result = board.repl.exec_raw(code, timeout=10.0)
    finally:
        if case.xfail:
            board.lifecycle.soft_reset()   # a hole that worked may stay open until the interpreter restarts
    out = result.stdout.decode("utf-8", "replace")
    err = result.stderr.decode("utf-8", "replace")
    for leak in LEAKS:
        assert leak not in out + err, f"{leak!r} leaked: {out + err!r}"
    last = err.rstrip("\r\n").split("\r\n")[-1] if err else None
    assert last == case.error, (out, err)
    if case.out is not None:
        assert out == case.out + "\r\n"


def test_board_is_fine_after_the_attempts(board) -> None:
    assert board.repl.exec("print(6 * 7)") == b"42\r\n"


REAL_PROGRAM = r'''
import os, sys, gc, ujson, ubinascii, uhashlib, ustruct, utime, KPU as kpu
from Maix import utils

class Sensor(object):
    count = 0
    def __init__(self, name, *readings, **opts):
        self.name = name
        self.readings = list(readings)
        self.scale = opts.get('scale', 1)
        Sensor.count += 1
    @property
    def mean(self):
        return sum(self.readings) * self.scale / len(self.readings)
    @staticmethod
    def unit():
        return 'C'
    @classmethod
    def make(cls, name):
        return cls(name, 20, 22)
    def __repr__(self):
        return '%s(%s)' % (type(self).__name__, self.name)

class Fancy(Sensor):
    def __init__(self, name):
        super().__init__(name, 1, 2, 3, scale=10)

s, f = Sensor.make('a'), Fancy('b')
print(s, f, s.mean, f.mean, Sensor.unit(), Sensor.count, s.__class__.__name__, isinstance(f, Sensor))
print(getattr(s, 'name'), getattr(s, 'missing', 'dflt'), hasattr(f, 'mean'))
setattr(s, 'extra', 5)
print(s.extra, sorted([f, s], key=lambda x: x.name), [x.name for x in (s, f) if x.mean > 20])

def chunks(data, n):
    for i in range(0, len(data), n):
        yield data[i:i + n]
print([bytes(c) for c in chunks(b'abcdefg', 3)], list(map(len, chunks(bytearray(10), 4))))

try:
    ujson.loads('{bad')
except ValueError as e:
    print('bad json:', type(e).__name__, e.__class__.__name__)
try:
    open('/sd/missing.txt')
except OSError as e:
    print('missing:', e.args[0])

with open('/sd/log.csv', 'w') as fh:
    for i in range(3):
        fh.write('%d,%.1f\n' % (i, i * 1.5))
rows = [line.strip().split(',') for line in open('/sd/log.csv')]
print(rows, os.listdir('/sd').count('log.csv'))
blob = ustruct.pack('<HHI', 1, 2, 3)
print(ubinascii.hexlify(blob), ustruct.unpack('<HHI', blob), ubinascii.hexlify(uhashlib.sha256(b'x').digest())[:8])
print(ujson.dumps({'k': [1, 2.5, None]}), '{:>5}|{:<3}|{:.2f}'.format('r', 'l', 3.14159))
t0 = utime.ticks_ms()
print(utime.ticks_diff(utime.ticks_ms(), t0) >= 0, gc.collect() is None, gc.mem_free() > 0)
print(utils.heap_free() > 0, kpu.memtest is not None)
net = kpu.load('/sd/model.kmodel')
kpu.deinit(net)
print('model loaded and freed')
g = globals()
print('Sensor' in g, eval('1 + 2'), type(int).__name__ if False else 'ok')
exec('print("exec ok", len(rows))')
'''


def test_programs_users_write_still_work(board) -> None:
    from hil.kmodel.build import build_v3
    board.device.put(build_v3(60_000), "/sd/model.kmodel")
    result = board.repl.exec_raw(REAL_PROGRAM, timeout=30.0)
    assert result.stderr == b"", result.stderr.decode()
    assert result.stdout.decode().split("\r\n") == [
        "Sensor(a) Fancy(b) 21.0 20.0 C 2 Sensor True",
        "a dflt True",
        "5 [Sensor(a), Fancy(b)] ['a']",
        "[b'abc', b'def', b'g'] [4, 4, 2]",
        "bad json: ValueError ValueError",
        "missing: 2",
        "[['0', '0.0'], ['1', '1.5'], ['2', '3.0']] 1",
        "b'0100020003000000' (1, 2, 3) b'2d711642'",
        '{"k": [1, 2.5, null]}     r|l  |3.14',
        "True True True",
        "True True",
        "model loaded and freed",
        "True 3 ok",
        "exec ok 3",
        "",
    ]
