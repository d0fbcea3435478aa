"""MicroPython programs of the device API and the domain drivers (MaixPy's module names).

Each builder returns the source of one program; what it prints is read by the host module that
calls it. Loaded KPU tasks live in the board's ``_hil_kpu`` dict, keyed by the host's handle id.
"""
from __future__ import annotations

ROUND_TRIP = "print(12321)"
ROUND_TRIP_REPLY = b"12321\r\n"
LITERALS = "[1, 'two', 3.5, None]"     # for an eval round trip: literals repr() gives back as written

MEMORY = "import gc\nfrom Maix import utils\ngc.collect()\nprint(gc.mem_free(), utils.heap_free())\n"
GC_HEAP_SIZE = "from Maix import utils\nprint(utils.gc_heap_size())\n"
SD_PRESENT = "import uos\ntry:\n    uos.listdir('/sd')\n    print(1)\nexcept OSError:\n    print(0)\n"
SD_READABLE = "import uos\nuos.listdir('/sd')\n"

_KPU_TABLE = "import KPU as kpu\ntry:\n    _hil_kpu\nexcept NameError:\n    _hil_kpu = {}\n"


def set_gc_heap_size(size: int) -> str:
    return f"from Maix import utils\nutils.gc_heap_size({int(size)})\n"


def exists(path: str) -> str:
    return f"import uos\ntry:\n    uos.stat({path!r})\n    print(1)\nexcept OSError:\n    print(0)\n"


def size(path: str) -> str:
    return f"import uos\nprint(uos.stat({path!r})[6])\n"


def remove(path: str, missing_ok: bool) -> str:
    if missing_ok:
        return f"import uos\ntry:\n    uos.remove({path!r})\nexcept OSError:\n    pass\n"
    return f"import uos\nuos.remove({path!r})\n"


def listdir(path: str) -> str:
    return f"__import__('uos').listdir({path!r})"      # an expression, for Repl.eval


def mkdir(path: str) -> str:
    return f"import uos\nuos.mkdir({path!r})\n"


# -- KPU --------------------------------------------------------------------------------------------
def kpu_load(slot: int, source: str | int) -> str:
    return _KPU_TABLE + f"_hil_kpu[{int(slot)}] = kpu.load({source!r})\n"


def kpu_deinit(slot: int, keep_task: bool) -> str:
    """Prints what kpu.deinit returned. ``keep_task``: the freed task stays in the table, so the
    firmware can be called on it again (double deinit, use after deinit)."""
    take = "_hil_kpu[%d]" if keep_task else "_hil_kpu.pop(%d)"
    return f"import KPU as kpu\nprint(kpu.deinit({take % int(slot)}))\n"


def kpu_forward(slot: int, data: list) -> str:
    return f"import KPU as kpu\nprint(kpu.forward(_hil_kpu[{int(slot)}], {list(data)!r}))\n"


def kpu_drop(slot: int) -> str:
    return f"try:\n    del _hil_kpu[{int(slot)}]\nexcept (NameError, KeyError):\n    pass\n"


KPU_DEINIT_ALL = _KPU_TABLE + ("_n = 0\nfor _k in list(_hil_kpu):\n    kpu.deinit(_hil_kpu.pop(_k))\n"
                               "    _n += 1\nprint(_n)\n")


# -- flash (Maix.utils.flash_read) ------------------------------------------------------------------
def flash_head(offset: int, n: int) -> str:
    return ("from Maix import utils\nimport ubinascii\n"
            f"print(ubinascii.hexlify(utils.flash_read({int(offset)}, {int(n)})).decode())\n")


def flash_sha256(offset: int, n: int) -> str:
    return f"""\
from Maix import utils
import uhashlib
import ubinascii
h = uhashlib.sha256()
a = {int(offset)}
n = {int(n)}
while n > 0:
    k = 4096 if n > 4096 else n
    h.update(utils.flash_read(a, k))
    a = a + k
    n = n - k
print(ubinascii.hexlify(h.digest()).decode())
"""


# -- a file made from another already on the board ----------------------------------------------------
_DERIVE = """\
import uos
import uhashlib
import ubinascii
f = open(%r, 'rb')
s = f.read(%d)
f.close()
P = %r
parts = []
a = 0
for e in P:
    parts.append(s[a:e[0]])
    r = ubinascii.unhexlify(e[1])
    parts.append(r)
    a = e[0] + len(r)
parts.append(s[a:])
d = b''.join(parts)
s = None
parts = None
h = uhashlib.sha256(d)
g = ubinascii.hexlify(h.digest()).decode()
if g == %r:
    f = open(%r, 'wb')
    f.write(d)
    f.close()
    try:
        uos.remove(%r)
    except OSError:
        pass
    uos.rename(%r, %r)
print(g)
"""


def derive(base: str, size: int, patches: list[tuple[int, str]], sha256: str, path: str) -> str:
    """Write ``path`` as the first ``size`` bytes of ``base`` with ``patches`` (offset, hex)
    applied, through ``path``.part, only when the result's sha256 is ``sha256``; prints it."""
    part = path + ".part"
    return _DERIVE % (base, size, patches, sha256, part, path, part, path)


def link_check(text: str) -> str:
    return f"print({text!r})"
