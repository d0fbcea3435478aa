"""MicroPython source that writes a generated kmodel v3 on the board itself.

Uploading a 3 MiB model over a 115200-baud REPL takes minutes; generating it on the board takes
seconds. ``writer_snippet`` returns source that rebuilds exactly ``build_v3(size, main_mem, seed)``:
the host solves the layout and embeds its literals (headers, layer arguments, register words,
activation tables; a few hundred bytes a layer, zero runs sent as counts), the board regenerates the
filler (weights) from two integers: a 4 KiB xorshift32 block plus a per-chunk counter word (see
hil/kmodel/filler.py). The bulk loop packs one word per 4 KiB, so it is cheap even in CPython.

Dialect, so it runs on MaixPy's MicroPython and in a restricted simulator namespace alike: no
f-strings, no walrus, no augmented assignment, no names starting with "_", no tuple unpacking, no
slice assignment; only open, ustruct (or struct), ubinascii, uhashlib, bytes, range, len, print.
It writes in chunks of at most 4096 bytes and prints one line: the sha256 hex of what it wrote.
The xorshift words exceed 2**30, so the board's MicroPython needs long ints (MaixPy has them).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import re
import struct
import sys
import types

from hil.kmodel import layout as _layout
from hil.kmodel.build import DEFAULT_MAIN_MEM
from hil.kmodel.filler import CHUNK, COUNTER_MASK, filler_params

_ZERO_RUN = re.compile(rb"\x00{24,}")

_TEMPLATE = """\
import uhashlib
import ubinascii
try:
    import ustruct as st
except ImportError:
    import struct as st
P = {path!r}
N = {size}
X = {state}
K = {key}
L = [
{lits}]
W = []
x = X
for i in range({words}):
    x = x ^ ((x << 13) & 0xffffffff)
    x = x ^ (x >> 17)
    x = x ^ ((x << 5) & 0xffffffff)
    W.append(st.pack('<I', x))
T = b''.join(W)[4:]
W = None
D = []
for e in L:
    D.append((e[0], ubinascii.unhexlify(e[1]) + bytes(e[2])))
L = None
n = len(D)
h = uhashlib.sha256()
f = open(P, 'wb')
j = 0
c = 0
p = 0
while p < N:
    q = p + {chunk}
    if q > N:
        q = N
    w = st.pack('<I', (c + K) & {mask})
    if j < n and D[j][0] < q:
        fc = w + T
        parts = []
        a = p
        k = j
        while k < n and D[k][0] < q:
            o = D[k][0]
            d = D[k][1]
            if o > a:
                parts.append(fc[a - p:o - p])
                a = o
            z = o + len(d)
            if z > q:
                z = q
            if z > a:
                parts.append(d[a - o:z - o])
                a = z
            k = k + 1
        if a < q:
            parts.append(fc[a - p:q - p])
        b = b''.join(parts)
        while j < n and D[j][0] + len(D[j][1]) <= q:
            j = j + 1
        f.write(b)
        h.update(b)
    elif q - p == {chunk}:
        f.write(w)
        f.write(T)
        h.update(w)
        h.update(T)
    else:
        b = (w + T)[:q - p]
        f.write(b)
        h.update(b)
    p = q
    c = c + 1
f.close()
print(ubinascii.hexlify(h.digest()).decode())
"""


def _pieces(lits: tuple[tuple[int, bytes], ...], size: int) -> list[tuple[int, str, int]]:
    """(offset, hex, zeros) pieces: each literal clipped to the file, long zero runs as counts."""
    out: list[tuple[int, str, int]] = []
    for off, data in lits:
        data = data[:max(0, size - off)]
        pos = 0
        for m in _ZERO_RUN.finditer(data):
            out.append((off + pos, data[pos:m.start()].hex(), m.end() - m.start()))
            pos = m.end()
        if pos < len(data):
            out.append((off + pos, data[pos:].hex(), 0))
    # a piece may be empty hex with zeros only; merge nothing else: order is by offset already
    return [p for p in out if p[1] or p[2]]


def writer_snippet(path: str, size: int, main_mem: int = DEFAULT_MAIN_MEM, seed: int = 0,
                   kernel: int = 3) -> str:
    """MicroPython source writing build_v3(size, main_mem, seed, kernel) to ``path`` on the board."""
    if "\n" in path or "\r" in path:
        raise ValueError(f"board path {path!r} contains a line break")
    lay = _layout.layout(3, size, main_mem, seed, kernel)
    state, key = filler_params(seed)
    lits = "".join(f"    ({o}, '{h}', {z}),\n" for o, h, z in _pieces(lay.lits, size))
    return _TEMPLATE.format(path=path, size=size, state=state, key=key, lits=lits,
                            words=CHUNK // 4, chunk=CHUNK, mask=hex(COUNTER_MASK))


def run_under_cpython(source: str) -> str:
    """Run a snippet here with ustruct/uhashlib/ubinascii mapped to the CPython modules; returns
    what it printed. For tests and benchmarks: the snippet writes to its path on this host."""
    shims = {
        "ustruct": struct,
        "uhashlib": types.SimpleNamespace(sha256=hashlib.sha256),
        "ubinascii": types.SimpleNamespace(hexlify=__import__("binascii").hexlify,
                                           unhexlify=__import__("binascii").unhexlify),
    }
    saved = {name: sys.modules.get(name) for name in shims}
    out = io.StringIO()
    try:
        sys.modules.update(shims)  # type: ignore[arg-type]
        with contextlib.redirect_stdout(out):
            exec(compile(source, "<kmodel-writer>", "exec"), {"__name__": "__main__"})
    finally:
        for name, mod in saved.items():
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod
    return out.getvalue()
