"""The MicroPython programs of file transfers (hil.device.micropython.transfer): a probe, the
windowed raw receiver, the raw and base64 senders and writer, hashing, the final rename, and the
REPL baud switch. Each is a str.format template or a builder; the host side fills them in.
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

READER = PRELUDE + """\
def _hil_each(path, n, each):
    h = _hh.sha256()
    f = open(path, 'rb')
    try:
        while True:
            d = f.read(n)
            if not d:
                break
            h.update(d)
            if each:
                each(d)
    finally:
        f.close()
    return _hb.hexlify(h.digest()).decode()
"""

RECEIVER = READER + """\
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
    print(_hil_each(path, {chunk}, None))
_hil_recv({path!r}, {size}, {win})
"""

# the size, the raw bytes, a line break, the sha256
SENDER = READER + """\
print(_ho.stat({path!r})[6])
_hil_g = _hil_each({path!r}, {chunk}, sys.stdout.buffer.write)
print()
print(_hil_g)
"""

HASH_FILE = READER + """\
print(_hil_each({path!r}, {chunk}, None))
"""

# the size, a base64 line per chunk, '=' and the sha256
B64_SENDER = READER + """\
print(_ho.stat({path!r})[6])
_hil_g = _hil_each({path!r}, {chunk}, lambda d: print(_hb.b2a_base64(d).decode().strip()))
print('=' + _hil_g)
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

BAUD_CHECK = "print(54321)"
BAUD_CHECK_REPLY = b"54321\r\n"


def b64_open(path: str) -> str:
    return f"_hf = open({path!r}, 'wb')\nimport ubinascii as _hb\n_hw = _hf.write\n_ha = _hb.a2b_base64"


def b64_write(lines: list[str]) -> str:
    """One exec writing the decoded base64 ``lines`` to the file b64_open opened."""
    return "\n".join(f"_hw(_ha({line!r}))" for line in lines)


B64_CLOSE = "_hf.close()\ndel _hf, _hw, _ha"
