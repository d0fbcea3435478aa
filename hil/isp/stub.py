"""The flash-mode ISP stub: Kendryte's binary, read from the installed kflash, never copied here.

kflash 1.1.6 embeds the stub in ``KFlash.process()`` as a hex string literal of zlib-compressed
bytes (``ISP_PROG = '789c...'``), so it is not reachable as a module attribute: we read the
module's source file, find that literal and decompress it. A rig may instead name a stub file
(for example one extracted from sipeed's kflash 0.8.3).

Known stubs, by SHA-256 of the decompressed binary (used by the simulated board to decide whether
code booted from SRAM is a flash-mode stub, and which one):
"""
from __future__ import annotations

import binascii
import hashlib
import importlib.util
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from hil.errors import IspError

SRAM_BASE = 0x80000000


@dataclass(frozen=True)
class StubInfo:
    name: str
    size: int
    has_reboot: bool       # answers ISP_REBOOT 0xD5
    has_nonblocking_erase: bool   # answers 0xD8/0xD9 (else only the blocking 0xD3)


KNOWN_STUBS: dict[str, StubInfo] = {
    # kflash 1.1.6 (PyPI), vowstar/kflash.py v1.1.6
    "757776d0055048262ef92bd04a9f8cbad13647ec4f5c1f59494489a88d571129":
        StubInfo("kflash-1.1.6", 16512, has_reboot=True, has_nonblocking_erase=True),
    # sipeed/kflash.py master 7307f75 (self-reported 0.8.3)
    "03837e34ba96e603011ab741844b5f8d2e44c6bdf58ae643c9e1fd15efafccea":
        StubInfo("sipeed-0.8.3", 29824, has_reboot=False, has_nonblocking_erase=False),
}

_LITERAL = re.compile(r"ISP_PROG\s*=\s*'([0-9a-fA-F]+)'")
_cache: dict[str, bytes] = {}


def identify(data: bytes) -> StubInfo | None:
    """Which known stub ``data`` is, or None."""
    return KNOWN_STUBS.get(hashlib.sha256(data).hexdigest())


def kflash_source() -> Path | None:
    spec = importlib.util.find_spec("kflash")
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin)


def stub_from_kflash_source(text: str, origin: str = "kflash.py") -> bytes:
    m = _LITERAL.search(text)
    if not m:
        raise IspError(f"{origin}: no ISP_PROG stub literal found (unsupported kflash version?)")
    try:
        return zlib.decompress(binascii.unhexlify(m.group(1)))
    except (binascii.Error, zlib.error) as exc:
        raise IspError(f"{origin}: ISP_PROG stub literal does not decompress: {exc}") from None


def load_stub(path: str | Path | None = None) -> bytes:
    """The stub to upload: from ``path`` if given, else from the installed kflash package."""
    if path is not None:
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise IspError(f"ISP stub file {p}: {exc.strerror or exc}") from None
        if not data:
            raise IspError(f"ISP stub file {p} is empty")
        return data
    src = kflash_source()
    if src is None:
        raise IspError("no ISP stub: the kflash package is not installed (pip install 'kflash>=1.1.6') "
                       "and the rig names no stub file")
    key = str(src)
    if key not in _cache:
        try:
            text = src.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise IspError(f"cannot read the ISP stub from {src}: {exc.strerror or exc}") from None
        _cache[key] = stub_from_kflash_source(text, str(src))
    return _cache[key]
