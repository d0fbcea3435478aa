"""The simulator's firmware side on its own: the plain-data door, newlib's heap, the loader per
library, the SHA engine, builds. Fast unit checks below the serial-level tests of
tests/test_fidelity.py; nothing here reads a suite profile.
"""
from __future__ import annotations

import ast
import hashlib
import struct
from pathlib import Path

import pytest

from hil.kmodel.build import build_v3, build_v4
from k210sim.builds import available, load_build, with_faults
from k210sim.errors import BuildError
from k210sim.firmware.newlib import MINSIZE, PAGE, NewlibHeap, request2size
from k210sim.firmware.services import FirmwareServices, gc_pool_bytes, is_plain
from k210sim.firmware.sha import ShaEngine

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures" / "models"


class Fw:
    """FirmwareServices on in-memory storage, recording what it prints."""

    def __init__(self, tmp_path: Path, build: str = "maixpy-v0.6.2-full", **faults: int) -> None:
        self.files: dict[str, bytes] = {}
        self.flash = bytearray(b"\xff") * (16 << 20)
        self.out: list[bytes] = []
        b = load_build(build)
        if faults:
            b = with_faults(b, **faults)
        (tmp_path / "flashfs").mkdir(parents=True, exist_ok=True)
        self.fw = FirmwareServices(b, tmp_path / "flashfs", self.files.get,
                                   lambda a, n: bytes(self.flash[a:a + n]),
                                   raw=self.out.append, cooked=lambda t: self.out.append(t.encode()))
        self.boot = self.fw.call("boot_memory")["ok"]

    def call(self, op: str, **args):
        assert is_plain(args), args
        reply = self.fw.call(op, args)
        assert is_plain(reply), reply
        return reply

    def load(self, path: str, data: bytes | None = None) -> dict:
        if data is not None:
            self.files[path] = data
        return self.call("kpu_load", source={"type": "str", "value": path})


def test_firmware_side_imports_no_interpreter():
    """What moves behind a message interface later (issue 15) must not lean on the sandbox."""
    for path in sorted((ROOT / "k210sim" / "firmware").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not name.startswith(("k210sim.maixpy", "RestrictedPython")), (path.name, name)


def test_every_reply_is_plain_data(tmp_path):
    f = Fw(tmp_path)
    net = f.load("/sd/m.kmodel", build_v3(5000))["ok"]["net"]
    f.call("kpu_describe", net=net)
    f.call("kpu_set_outputs", net=net, idx={"type": "int", "value": 0}, w={"type": "int", "value": 1},
           h={"type": "int", "value": 1}, ch={"type": "int", "value": 1})
    f.call("kpu_forward", net=net, img={"type": "list", "value": [1.0, 2.0]}, out_index=0)
    f.call("kpu_get_output", net=net, idx={"type": "int", "value": 0})
    f.call("kpu_netinfo", net=net)
    f.call("kpu_deinit", net=net)
    f.call("kpu_net_del", net=net)
    sha = f.call("sha_new", data=b"x")["ok"]
    f.call("sha_update", id=sha, data=b"y")
    assert f.call("sha_digest", id=sha)["ok"] == hashlib.sha256(b"xy").digest()
    f.call("heap_free")
    f.call("gc_heap_size", value=None)
    f.call("flash_read", addr=0, length=8)
    f.call("version")
    assert f.call("no_such_op")["raise"] == "OSError"


def test_fault_and_raise_replies(tmp_path):
    f = Fw(tmp_path)
    assert f.load("/sd/none.kmodel") == {"raise": "ValueError", "errno": None, "orphan": 1,
                                         "text": "[MAIXPY]kpu: load error:2005, ERR_READ_FILE: read file failed"}
    v5 = (FIX / "v5_conv_relu.kmodel").read_bytes()
    assert f.load("/sd/v5.kmodel", v5) == {"fault": "fault load", "site": "nncase_context::load_kmodel"}


def test_request2size_and_minimum_chunk():
    assert request2size(0) == MINSIZE and request2size(1) == MINSIZE and request2size(24) == 32
    assert request2size(25) == 48 and request2size(524288) == 524288 + 16


def test_newlib_extends_by_the_whole_request_in_pages():
    fails = []
    h = NewlibHeap(0x80100000, 0x80200000, on_sbrk_fail=lambda: fails.append(1))
    first = h.malloc(100)
    assert first == 0x80100010 and h.brk % PAGE == 0
    gap = h.gap
    h.malloc(10_000)                     # the top had most of a page: it still grows by the request
    assert gap - h.gap == ((request2size(10_000) + MINSIZE + PAGE - 1) // PAGE) * PAGE
    assert h.malloc(2 * 1024 * 1024) is None and fails == [1]


def test_newlib_trims_only_past_128k():
    h = NewlibHeap(0x80100000, 0x80500000)
    h.malloc(16)
    base = h.gap
    p = h.malloc(100_000)
    h.free(p)
    assert h.gap < base                   # top under 128 KiB: kept
    q = h.malloc(300_000)
    h.free(q)
    assert 0 <= h.gap - base <= PAGE       # trimmed back to less than a page over MINSIZE


def test_gc_pool_sizes():
    assert gc_pool_bytes(0x802ffd80, 512 * 1024) == 518144
    assert gc_pool_bytes(0x802ffd80, 128 * 1024) == 129536


@pytest.mark.parametrize("build, v4_loads", [("maixpy-v0.6.2-full", True), ("maixpy-v0.6.2-minimum", False)])
def test_loader_per_library(tmp_path, build, v4_loads):
    f = Fw(tmp_path, build)
    text = ("only support kmodel V3/V4 now" if v4_loads else "only support kmodel V3")
    v4 = f.load("/sd/v4.kmodel", build_v4(5000))
    if v4_loads:
        assert "ok" in v4
    else:
        assert v4["text"] == f"[MAIXPY]kpu: load error:2002, ERR_KMODEL_VERSION: {text}"
    bad = f.load("/sd/v4bad.kmodel", (FIX / "broken_v4_bad_version.kmodel").read_bytes())
    assert ("fault" in bad) == v4_loads
    for name in ("broken_truncated", "broken_zero_layers", "broken_body_size_zero"):
        assert "ok" in f.load(f"/sd/{name}.kmodel", (FIX / f"{name}.kmodel").read_bytes()), name


def test_slot_is_claimed_before_the_file(tmp_path):
    f = Fw(tmp_path)
    for i in range(5):
        assert "ok" in f.load("/sd/m.kmodel", build_v3(1000))
    assert f.load("/sd/none.kmodel")["text"].startswith("[MAIXPY]kpu: load error:2009, ")


def test_regressed_build_leaks_on_deinit(tmp_path):
    healthy, leaky = Fw(tmp_path / "a"), Fw(tmp_path / "b", "maixpy-v0.6.2-full-regressed")
    gaps = []
    for f in (healthy, leaky):
        data = build_v3(400_000)
        start = f.call("heap_free")["ok"]
        for _ in range(10):
            net = f.load("/sd/m.kmodel", data)["ok"]["net"]
            f.call("kpu_deinit", net=net)
        gaps.append(start - f.call("heap_free")["ok"])
    assert abs(gaps[0]) <= PAGE and gaps[1] >= 10 * 8192 - PAGE
    assert leaky.boot["gc_start"] == healthy.boot["gc_start"] + 256 * 1024


def test_flash_reads_wrap_at_24_bits(tmp_path):
    f = Fw(tmp_path)
    f.flash[0xFFFFFC:] = b"\x01\x02\x03\x04"
    f.flash[0:4] = b"\x05\x06\x07\x08"
    assert f.call("flash_read", addr=0x1FFFFFC, length=8)["ok"] == bytes(range(1, 9))


def test_sha_engine_count_wraps_at_16_bits():
    e = ShaEngine()
    h = e.new()
    e.update(h, bytes(4194231))
    assert e.digest(h) == hashlib.sha256(bytes(4194231)).digest()
    h = e.new()
    e.update(h, bytes(4194232))
    assert e.digest(h) != hashlib.sha256(bytes(4194232)).digest()


def test_gc_heap_size_is_a_u32_in_freq_conf(tmp_path):
    f = Fw(tmp_path)
    assert f.call("gc_heap_size", value=-1) == {"ok": None}
    conf = (tmp_path / "flashfs" / "freq.conf").read_bytes()
    assert struct.unpack("<IIB3xI", conf)[3] == 0xFFFFFFFF
    assert f.call("gc_heap_size", value=None) == {"ok": 0xFFFFFFFF}
    g = Fw(tmp_path)                                     # next boot: malloc fails, 128k fallback
    assert g.boot["gc_size"] == 128 * 1024
    assert b"GC heap size -1 is too large, reset GC heap size\r\n" in g.out


def test_shipped_builds_load_and_bad_ones_are_refused(tmp_path, monkeypatch):
    names = available()
    assert {"maixpy-v0.6.2-full", "maixpy-v0.6.2-minimum", "maixpy-v0.6.2-full-regressed"} <= set(names)
    for name in names:
        b = load_build(name)
        assert b.kpu_library in ("v3", "v4") and b.image_size > 0
    with pytest.raises(BuildError, match="unknown firmware build 'nope'"):
        load_build("nope")
    import k210sim.builds as builds
    monkeypatch.setattr(builds, "BUILD_DIR", tmp_path)
    (tmp_path / "x.toml").write_text('[build]\nname = "x"\nversion = "v"\nbuild_date = "d"\n'
                                     'kpu_library = "v5"\nimage_size = 1\n[memory]\n'
                                     'heap_start = 0x80100000\ngc_heap_default = 1\nboot_malloc = 0\n')
    with pytest.raises(BuildError, match="build.kpu_library: 'v5' is not one of v4, v3"):
        load_build("x")
