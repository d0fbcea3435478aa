"""Unit tests of the ISP client's pieces: SLIP, packets, images, kfpkg, the stub loader."""
from __future__ import annotations

import hashlib
import json
import os
import struct
import zipfile
import zlib

import pytest

from hil.errors import ConfigError, IspError
from hil.isp import slip
from hil.isp.image import (KfpkgEntry, check_no_overlap, check_region, looks_wrapped,
                           parse_flash_list, read_kfpkg, unwrap_firmware, wrap_firmware,
                           write_kfpkg)
from hil.isp.packets import (SHORT_FRAMES, Reason, RomOp, StubOp, build_reply, build_request,
                             parse_reply, parse_request)
from hil.isp.stub import KNOWN_STUBS, identify, load_stub


def test_slip_roundtrip_and_escapes():
    payload = bytes(range(256)) * 3
    frame = slip.encode(payload)
    assert frame[0] == 0xC0 and frame[-1] == 0xC0
    assert b"\xc0" not in frame[1:-1]
    # kflash's escaping: DB first, then C0
    assert slip.encode(b"\xc0\xdb") == b"\xc0\xdb\xdc\xdb\xdd\xc0"
    dec = slip.SlipDecoder()
    frames = dec.feed(b"noise" + frame + b"\xc0\xc0" + slip.encode(b"x"))
    assert [f.payload for f in frames] == [payload, b"x"]
    assert dec.discarded == 5


def test_slip_byte_by_byte_and_bad_escape():
    dec = slip.SlipDecoder()
    out = []
    for b in slip.encode(b"\x01\xc0\x02\xdb\x03"):
        out += dec.feed(bytes([b]))
    assert [f.payload for f in out] == [b"\x01\xc0\x02\xdb\x03"]
    bad = dec.feed(b"\xc0\x01\xdb\x07\x02\xc0")
    assert len(bad) == 1 and bad[0].damaged


def test_slip_keep_empty():
    dec = slip.SlipDecoder(keep_empty=True)
    assert [f.payload for f in dec.feed(b"\xc0\xc0")] == [b""]


def test_request_layout_matches_kflash():
    data = os.urandom(100)
    req = build_request(StubOp.FLASH_WRITE, 0x300000, data)
    op, res, crc, addr, n = struct.unpack_from("<HHIII", req)
    assert (op, res, addr, n) == (0xD4, 0, 0x300000, 100)
    assert crc == zlib.crc32(req[8:]) & 0xFFFFFFFF
    parsed = parse_request(req)
    assert parsed.crc_ok and parsed.length_ok and parsed.data == data and not parsed.short


def test_short_frames_are_kflash_bytes():
    assert b"\xc0" + SHORT_FRAMES[RomOp.NOP] + b"\xc0" == \
        b"\xc0\xc2\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xc0"
    p = parse_request(SHORT_FRAMES[StubOp.REBOOT])
    assert p.short and p.op == 0xD5 and not p.crc_ok


def test_reply_parse():
    r = parse_reply(build_reply(0xD4, 0xE2))
    assert (r.op, r.reason, r.ok) == (0xD4, Reason.BAD_DATA_CHECKSUM, False)
    assert "bad data checksum" in r.describe()
    assert parse_reply(b"\xd4") is None
    assert parse_reply(b"\xd1\xe0hello").text == "hello"


def test_wrap_matches_kflash_layout():
    payload = os.urandom(1000)
    img = wrap_firmware(payload)
    assert img[0] == 0x02 and struct.unpack_from("<I", img, 1)[0] == 1000
    assert img[-32:] == hashlib.sha256(img[:-32]).digest()
    u = unwrap_firmware(img)
    assert u.sha_ok and u.payload == payload and u.flags == 2
    assert looks_wrapped(img) and not looks_wrapped(payload)
    assert not unwrap_firmware(img[:-1] + b"\x00").sha_ok


def test_region_checks_name_the_address():
    check_region(0x300000, 4096)
    with pytest.raises(IspError, match="0x00fff000.*past the end of the 16 MiB flash"):
        check_region(0xFFF000, 8192)
    with pytest.raises(IspError, match="0x00300001.*aligned to 4 KiB"):
        check_region(0x300001, 4096, align=4096)
    with pytest.raises(IspError, match="0x00100000 overlaps the firmware"):
        check_no_overlap(0x100000, 10, firmware_end=0x1C8000, what="m.kmodel")
    check_no_overlap(0x300000, 10, firmware_end=0x1C8000)
    check_no_overlap(0x100000, 10, firmware_end=None)


def test_kfpkg_roundtrip_and_kflash_quirk(tmp_path):
    entries = [KfpkgEntry(0, "fw.bin", b"firmware", True), KfpkgEntry(0x300000, "m.kmodel", b"model", False)]
    p = write_kfpkg(tmp_path / "x.kfpkg", entries)
    with zipfile.ZipFile(p) as zf:
        text = zf.read("flash-list.json").decode()
    # kflash's regex needs exactly `"address": VALUE,`
    assert '"address": 0x300000,' in text
    assert read_kfpkg(p) == entries
    files = parse_flash_list('{"files": [{"address": 0x10,\n "bin": "a", "sha256Prefix": false}]}')
    assert files[0]["address"] == "0x10"


def test_kfpkg_errors(tmp_path):
    bad = tmp_path / "bad.kfpkg"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="bad.kfpkg"):
        read_kfpkg(bad)
    nolist = tmp_path / "nolist.kfpkg"
    with zipfile.ZipFile(nolist, "w") as zf:
        zf.writestr("a.bin", b"x")
    with pytest.raises(ConfigError, match="no flash-list.json"):
        read_kfpkg(nolist)
    missing = tmp_path / "missing.kfpkg"
    with zipfile.ZipFile(missing, "w") as zf:
        zf.writestr("flash-list.json", json.dumps({"files": [{"address": 0, "bin": "gone.bin"}]}))
    with pytest.raises(ConfigError, match="'gone.bin' is not in the package"):
        read_kfpkg(missing)


def test_stub_from_installed_kflash():
    stub = load_stub()
    info = identify(stub)
    assert info is not None and info.name == "kflash-1.1.6" and len(stub) == info.size
    assert len(KNOWN_STUBS) == 2


def test_stub_file_errors(tmp_path):
    with pytest.raises(IspError, match="nope.bin"):
        load_stub(tmp_path / "nope.bin")
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(IspError, match="empty"):
        load_stub(tmp_path / "empty.bin")
    (tmp_path / "s.bin").write_bytes(b"abc")
    assert load_stub(tmp_path / "s.bin") == b"abc"


def test_stub_missing_kflash(monkeypatch):
    import hil.isp.stub as stubmod
    monkeypatch.setattr(stubmod, "kflash_source", lambda: None)
    with pytest.raises(IspError, match="kflash package is not installed"):
        stubmod.load_stub()
