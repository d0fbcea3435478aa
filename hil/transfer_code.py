"""The MicroPython programs hil.transfer runs on the board: a probe, the windowed raw receiver,
the raw and base64 senders, hashing, the final rename, and the REPL baud switch.

They are device code (MicroPython 1.11 on MaixPy: no f-strings), kept apart from the host side
that sends them; each is a str.format template filled in by hil.transfer.
"""

PRELUDE = """\
import sys
try:
    import uhashlib as _hh
except ImportError:
    import hashlib as _hh
try:
    import ubinascii as _hb
except ImportError:
    import binascii as _hb
try:
    import uos as _ho
except ImportError:
    import os as _ho
"""

PROBE = PRELUDE + """\
try:
    import micropython
    _k = hasattr(micropython, 'kbd_intr')
except ImportError:
    _k = False
print(_k and hasattr(sys.stdin, 'buffer') and hasattr(sys.stdout, 'buffer'))
"""

RECEIVER = PRELUDE + """\
import micropython
def _hil_recv(path, size, win):
    h = _hh.sha256()
    rd = sys.stdin.buffer.read
    wr = sys.stdout.write
    buf = bytearray({chunk})
    mv = memoryview(buf)
    o = 0
    f = open(path, 'wb')
    micropython.kbd_intr(-1)
    try:
        wr('\\x06')
        left = size
        while left:
            n = win if left > win else left
            d = rd(n)
            left -= n
            wr('\\x06')
            h.update(d)
            mv[o:o + n] = d
            o += n
            if o >= {chunk}:
                f.write(buf)
                o = 0
        if o:
            f.write(mv[:o])
    finally:
        micropython.kbd_intr(3)
        f.close()
    print(_hb.hexlify(h.digest()).decode())
    h = _hh.sha256()
    f = open(path, 'rb')
    try:
        while True:
            d = f.readinto(buf)
            if not d:
                break
            h.update(mv[:d])
    finally:
        f.close()
    print(_hb.hexlify(h.digest()).decode())
_hil_recv({path!r}, {size}, {win})
"""

SENDER = PRELUDE + """\
def _hil_send(path):
    h = _hh.sha256()
    w = sys.stdout.buffer.write
    f = open(path, 'rb')
    try:
        print(_ho.stat(path)[6])
        while True:
            d = f.read({chunk})
            if not d:
                break
            h.update(d)
            w(d)
    finally:
        f.close()
    print()
    print(_hb.hexlify(h.digest()).decode())
_hil_send({path!r})
"""

HASH_FILE = PRELUDE + """\
def _hil_hash(path):
    h = _hh.sha256()
    f = open(path, 'rb')
    try:
        while True:
            d = f.read({chunk})
            if not d:
                break
            h.update(d)
    finally:
        f.close()
    print(_hb.hexlify(h.digest()).decode())
_hil_hash({path!r})
"""

B64_SENDER = PRELUDE + """\
def _hil_send(path):
    h = _hh.sha256()
    f = open(path, 'rb')
    try:
        print(_ho.stat(path)[6])
        while True:
            d = f.read({chunk})
            if not d:
                break
            h.update(d)
            print(_hb.b2a_base64(d).decode().strip())
    finally:
        f.close()
    print('=' + _hb.hexlify(h.digest()).decode())
_hil_send({path!r})
"""

RENAME = """\
import uos
try:
    uos.remove({final!r})
except OSError:
    pass
uos.rename({part!r}, {final!r})
"""

REMOVE_QUIETLY = """\
import uos
try:
    uos.remove({path!r})
except OSError:
    pass
"""


SWITCH = """\
from machine import UART
UART.repl_uart().init({baud}, 8, None, 1, read_buf_len={rxbuf})
"""
