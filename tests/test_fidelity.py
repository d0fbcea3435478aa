"""docs/fidelity.md, row by row: what MaixPy v0.6.2-75 prints, asserted byte for byte on the
simulator through a real serial client (pyserial on the simulator's pty).

Every test names its ledger row (``ROW``); the expected bytes are written here from the firmware
source, never read from a suite profile or from the simulator's own tables. Two simulators run
for the module: the full build (lib_sipeed_kpu_v4.a + libnncase.a) and the minimum build
(lib_sipeed_kpu.a, v3 only), line pacing off. A test that needs the heap as a fresh boot leaves
it resets the board first (``fresh``).
"""
from __future__ import annotations

import re
import struct
import time
from pathlib import Path

import pytest
import serial

from hil.kmodel.build import build_v3, build_v4
from k210sim.control import ControlClient
from k210sim.server import SimServer

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "models"
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
PROMPT = b">>> "
V34 = "ERR_KMODEL_VERSION: only support kmodel V3/V4 now"
V3ONLY = "ERR_KMODEL_VERSION: only support kmodel V3"
E2003 = "ValueError: [MAIXPY]kpu: load error:2003, ERR_KMODEL_FORMAT: layer_header.body_size <=0"
E2005 = "ValueError: [MAIXPY]kpu: load error:2005, ERR_READ_FILE: read file failed"
E2006 = "ValueError: [MAIXPY]kpu: load error:2006, ERR_NO_MEM: memory not enough"
OOM = rb"\x1b\[0;31mE \(\d+\) SYSCALL: Out of memory\r\n\x1b\[0m\n"
HEAP_AFTER_BOOT = 0x80600000 - 0x80380000 - 368_640 - 4_096   # see test_heap_free_is_the_gap_above_the_break


def row(name: str):
    """Tie a test to its ledger row (docs/fidelity.md); the id is checked by test_ledger_rows."""
    return pytest.mark.row(name)


class Client:
    """pyserial on the pty: the raw REPL, friendly lines, and bytes as they come."""

    def __init__(self, sim: SimServer) -> None:
        self.sim = sim
        self.port = serial.Serial(sim.endpoints["pty"], 115200, timeout=0.05)
        self.control = ControlClient(sim.control_path)

    def read_until(self, marker: bytes, timeout: float = 10.0) -> bytes:
        buf = bytearray()
        deadline = time.monotonic() + timeout
        while marker not in buf:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {marker!r} within {timeout} s; got {bytes(buf[-400:])!r}")
            buf += self.port.read(65536)
        return bytes(buf)

    def read_for(self, seconds: float) -> bytes:
        buf = bytearray()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            buf += self.port.read(65536)
        return bytes(buf)

    def reset(self) -> bytes:
        """The reset button; returns the boot log up to the friendly prompt."""
        self.port.reset_input_buffer()
        self.control.reset()
        return self.read_until(PROMPT)

    def raw(self) -> None:
        self.port.write(b"\r\x03\x03\x01")
        self.read_until(RAW_BANNER)
        self.port.reset_input_buffer()

    def exec(self, code: str, timeout: float = 20.0) -> tuple[bytes, bytes]:
        self.port.write(code.encode() + b"\x04")
        got = self.read_until(b"\x04>", timeout)
        assert got.startswith(b"OK"), got
        out, err = got[2:-2].split(b"\x04", 1)
        return out, err

    def ok(self, code: str) -> bytes:
        out, err = self.exec(code)
        assert err == b"", err.decode(errors="replace")
        return out

    def error(self, code: str) -> tuple[bytes, str]:
        """(stdout, the exception line) of code that must raise."""
        out, err = self.exec(code)
        assert err, f"{code!r} raised nothing; printed {out!r}"
        return out, err.decode().rstrip("\r\n").split("\r\n")[-1]

    def send_and_read(self, code: str, seconds: float) -> bytes:
        self.port.write(code.encode() + b"\x04")
        return self.read_for(seconds)

    def close(self) -> None:
        self.port.close()


def _start(tmp_path_factory, build: str) -> tuple[SimServer, Client]:
    sim = SimServer(tmp_path_factory.mktemp(build) / "state", build=build, pace=False, rfc2217=None)
    sim.start()
    client = Client(sim)
    client.read_until(PROMPT)
    return sim, client


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    sim, client = _start(tmp_path_factory, "maixpy-v0.6.2-full")
    yield client
    client.close()
    sim.stop()


@pytest.fixture(scope="module")
def minimum(tmp_path_factory):
    sim, client = _start(tmp_path_factory, "maixpy-v0.6.2-minimum")
    yield client
    client.close()
    sim.stop()


def fresh(c: Client) -> Client:
    c.reset()
    c.raw()
    return c


def sd(c: Client, name: str, data: bytes) -> str:
    (c.sim.storage.sd_root / name).write_bytes(data)
    return "/sd/" + name


def fixture(name: str) -> bytes:
    return (FIX / f"{name}.kmodel").read_bytes()


def repr_of(path: str, size: int, addr: int = 0) -> bytes:
    return (b'{"model_addr": %d, "model_size": %d, "model_path": "%s", "net_args": "(null)"}\r\n'
            % (addr, size, path.encode() if path else b"(null)"))


def assert_core_dump(c: Client, got: bytes) -> None:
    """The SDK's dump_core() through printk, cut by the nested fault of its %f; then silence."""
    assert re.fullmatch(
        rb"core dump: fault load\r\nCause 0x0000000000000005, EPC 0x[0-9a-f]{16}\r\n"
        + b"".join(rb"reg\[%02d\]\(.{5}\) = 0x[0-9a-f]{16}, reg\[%02d\]\(.{5}\) = 0x[0-9a-f]{16}\r\n"
                   % (2 * i, 2 * i + 1) for i in range(16))
        + rb"freg\[00\]\(ft0 \) = 0x0000000000000000\(\), freg\[00\]\(core dump: fault load\r\n", got), got
    c.port.write(b"\r\x03\x03print(1)\r")
    assert c.read_for(0.5) == b"", "a faulted board must not answer until it is reset"
    assert b"MicroPython v" in c.reset()


# -- boot, config, memory -----------------------------------------------------------------------
@row("boot-log")
def test_boot_log(full):
    log = full.reset()
    assert log.startswith(
        b"\r\n[MAIXPY] Pll0:freq:806000000\r\n[MAIXPY] Pll1:freq:398666666\r\n"
        b"[MAIXPY] Pll2:freq:45066666\r\n[MAIXPY] cpu:freq:403000000\r\n[MAIXPY] kpu:freq:398666666\r\n"
        b"[MAIXPY] Flash:0xc8:0x17\r\n[MaixPy] gc heap=0x802ffd80-0x8037fd80(524288)\r\n"
        b"[MaixPy] init end\r\n\r\n __  __"), log[:400]
    assert log.endswith(b"Official Site : https://www.sipeed.com\r\nWiki          : https://maixpy.sipeed.com\r\n"
                        b"\r\nMicroPython v0.6.2-75-g973361c0d on 2022-04-16; Sipeed_M1 with kendryte-k210\r\n"
                        b'Type "help()" for more information.\r\n>>> '), log[-300:]


@row("gc-blocks")
def test_gc_heap_is_32_byte_blocks_after_its_tables(full):
    fresh(full)
    total, used = map(int, full.ok("import gc\nprint(gc.mem_free() + gc.mem_alloc(), gc.mem_alloc())").split())
    assert total == 518144
    assert 16 * 1024 <= used <= 40 * 1024 and used % 32 == 0


@row("gc-fallback")
def test_gc_heap_too_big_falls_back_to_128k(full):
    conf = full.sim.storage.flashfs_root / "freq.conf"
    old = conf.read_bytes()
    try:
        conf.write_bytes(struct.pack("<IIB3xI", 400_000_000, 400_000_000, 1, 8 * 1024 * 1024))
        log = full.reset()
        assert re.search(rb"\[MAIXPY\] Flash:0xc8:0x17\r\n" + OOM
                         + rb"GC heap size 8388608 is too large, reset GC heap size\r\nGC size 128k\r\n"
                         rb"\[MaixPy\] gc heap=0x802ffd80-0x8031fd80\(131072\)\r\n", log), log[:600]
        full.raw()
        assert full.ok("import gc\nprint(gc.mem_free() + gc.mem_alloc())") == b"129536\r\n"
    finally:
        conf.write_bytes(old)
        full.reset()


@row("freq-conf")
def test_freq_conf_always_exists(full):
    conf = full.sim.storage.flashfs_root / "freq.conf"
    conf.unlink()
    fresh(full)
    assert conf.read_bytes() == struct.pack("<IIB3xI", 400_000_000, 400_000_000, 1, 0x80000)
    assert b"'freq.conf'" in full.ok("import os\nprint(os.listdir('/flash'))")


@row("gc-heap-size")
def test_gc_heap_size_saves_and_returns_none(full):
    fresh(full)
    try:
        assert full.ok("from Maix import utils\nprint(utils.gc_heap_size(0x60000))\n"
                       "print(utils.gc_heap_size())") == b"None\r\n393216\r\n"
        assert full.read_for(0.3) == b""                     # no reboot, no banner
        conf = (full.sim.storage.flashfs_root / "freq.conf").read_bytes()
        assert struct.unpack("<IIB3xI", conf)[3] == 0x60000
        assert full.ok("utils.gc_heap_size(0)\nprint(utils.gc_heap_size())") == b"524288\r\n"
        _, err = full.error("utils.gc_heap_size(1, 2)")
        assert err == "TypeError: function expected at most 1 arguments, got 2"
    finally:
        full.ok("utils.gc_heap_size(0x80000)")


@row("default-main-py")
def test_boot_writes_the_default_main_py(full):
    main = full.sim.storage.sd_root / "main.py"
    main.unlink(missing_ok=True)
    full.reset()
    text = main.read_bytes()
    assert text.startswith(b"\ntry:\n    import gc, lcd, image, sys, os\n    from Maix import GPIO\n")
    assert text.endswith(b"    gc.collect()\nfinally:\n    gc.collect()\n") and len(text) == 2095
    main.write_bytes(b"print('mine')\n")
    assert b"mine\r\nMicroPython v" in full.reset()
    main.unlink()
    full.reset()


@row("heap-free-gap")
def test_heap_free_is_the_gap_above_the_break(full):
    fresh(full)
    # newlib's first chunk is the GC heap at 0x802ffd80; its sbrk and correction leave the break
    # at 0x80380000; the boot mallocs take 368640 bytes plus one page of sbrk rounding
    assert full.ok("from Maix import utils\nprint(utils.heap_free())") == b"%d\r\n" % HEAP_AFTER_BOOT


@row("heap-page-growth-trim")
def test_heap_grows_by_pages_and_trims_over_128k(full):
    fresh(full)
    small = sd(full, "small.kmodel", build_v3(6000))
    big = sd(full, "big.kmodel", build_v3(300_000))
    out = full.ok("import KPU as kpu\nfrom Maix import utils\nb = utils.heap_free()\n"
                  f"t = kpu.load({small!r})\nl = utils.heap_free()\nkpu.deinit(t)\n"
                  "print(b, l, utils.heap_free())")
    before, loaded, after = map(int, out.split())
    assert (before - loaded) % 4096 == 0 and before - loaded >= 6000 + 65536
    assert after == loaded                      # < 128 KiB on top: nothing is given back
    out = full.ok(f"t = kpu.load({big!r})\nl = utils.heap_free()\nkpu.deinit(t)\nprint(l, utils.heap_free())")
    loaded2, after2 = map(int, out.split())
    assert loaded2 < after - 300_000 and after2 - loaded2 >= 300_000
    assert after2 % 4096 == 0 and abs(after2 - before) <= 4096    # trimmed back within a page


@row("syscall-oom")
def test_failed_malloc_logs_then_2006(full):
    fresh(full)
    path = sd(full, "toobig.kmodel", build_v3(3_000_000))
    out, err = full.error(f"import KPU as kpu\nkpu.load({path!r})")
    assert re.fullmatch(OOM, out), out
    assert err == E2006


# -- kpu.load(path) ------------------------------------------------------------------------------
@row("load-missing-file")
def test_missing_file_and_missing_card_are_2005(full):
    fresh(full)
    assert full.error("import KPU as kpu\nkpu.load('/sd/nope.kmodel')")[1] == E2005
    assert full.error("kpu.load('nope.kmodel')")[1] == E2005
    full.control.sd(False)
    try:
        full.reset()
        full.raw()
        assert full.error("import KPU as kpu\nkpu.load('/sd/m.kmodel')")[1] == E2005
    finally:
        full.control.sd(True)
        full.reset()


@row("load-short-file")
def test_empty_and_short_files_are_2005(full):
    fresh(full)
    full.ok("import KPU as kpu")
    for n in (0, 1, 7):
        path = sd(full, f"short{n}.kmodel", b"\x03\x00\x00\x00\x01\x00\x00"[:n])
        assert full.error(f"kpu.load({path!r})")[1] == E2005, n


@row("load-magic")
def test_unknown_magic_is_2002_with_the_builds_text(full, minimum):
    for c, text in ((full, V34), (minimum, V3ONLY)):
        fresh(c)
        path = sd(c, "random.kmodel", fixture("broken_random_bytes"))
        assert c.error(f"import KPU as kpu\nkpu.load({path!r})")[1] == \
            f"ValueError: [MAIXPY]kpu: load error:2002, {text}"


@row("load-6mib")
def test_files_over_6_mib_are_2003_before_any_malloc(full):
    fresh(full)
    head = build_v3(1000)
    over = sd(full, "over.kmodel", head + bytes(6 * 1024 * 1024 + 1 - len(head)))
    exact = sd(full, "exact.kmodel", head + bytes(6 * 1024 * 1024 - len(head)))
    out, err = full.error(f"import KPU as kpu\nkpu.load({over!r})")
    assert (out, err) == (b"", E2003)
    out, err = full.error(f"kpu.load({exact!r})")            # passes the size check, then no memory
    assert re.fullmatch(OOM, out) and err == E2006


@row("load-v3-unchecked")
def test_v3_files_load_without_format_checks(full):
    fresh(full)
    full.ok("import KPU as kpu")
    for name in ("broken_truncated", "broken_truncated_in_tables", "broken_body_size_zero",
                 "broken_zero_layers", "broken_first_layer_not_conv", "broken_body_past_end",
                 "broken_short_header"):
        data = fixture(name)
        path = sd(full, name + ".kmodel", data)
        assert full.ok(f"t = kpu.load({path!r})\nprint(t)\nkpu.deinit(t)") == repr_of(path, len(data)), name


@row("load-v3-arch")
def test_v3_arch_not_zero_is_2002(full):
    fresh(full)
    path = sd(full, "arch.kmodel", fixture("broken_v3_arch_nonzero"))
    assert full.error(f"import KPU as kpu\nkpu.load({path!r})")[1] == \
        f"ValueError: [MAIXPY]kpu: load error:2002, {V34}"


@row("load-main-mem")
def test_v3_main_mem_that_does_not_fit_is_2006(full):
    fresh(full)
    path = sd(full, "mainmem.kmodel", build_v3(5000, main_mem=4 * 1024 * 1024))
    out, err = full.error(f"import KPU as kpu\nkpu.load({path!r})")
    assert re.fullmatch(OOM, out) and err == E2006


@row("load-slots")
def test_five_models_then_2009_before_the_file(full):
    fresh(full)
    path = sd(full, "s.kmodel", build_v3(2000))
    full.ok(f"import KPU as kpu\nts = [kpu.load({path!r}) for i in range(5)]")
    full_text = "ValueError: [MAIXPY]kpu: load error:2009, ERR_MODELS_FULL: we only support load 5 models in the same time"
    assert full.error(f"kpu.load({path!r})")[1] == full_text
    assert full.error("kpu.load('/sd/none.kmodel')")[1] == full_text     # the slots come first
    assert full.ok(f"kpu.deinit(ts[0])\nts[0] = kpu.load({path!r})\nprint(len(ts))") == b"5\r\n"
    full.ok("for t in ts:\n    kpu.deinit(t)")


@row("load-v4-on-v3-library")
def test_v4_file_on_the_v3_library_is_2002_before_malloc(minimum):
    fresh(minimum)
    path = sd(minimum, "v4.kmodel", build_v4(5000))
    out = minimum.ok("import KPU as kpu\nfrom Maix import utils\nprint(utils.heap_free())")
    _, err = minimum.error(f"kpu.load({path!r})")
    assert err == f"ValueError: [MAIXPY]kpu: load error:2002, {V3ONLY}"
    assert minimum.ok("print(utils.heap_free())") == out
    v5 = sd(minimum, "v5.kmodel", fixture("v5_conv_relu"))
    assert minimum.error(f"kpu.load({v5!r})")[1] == f"ValueError: [MAIXPY]kpu: load error:2002, {V3ONLY}"


@row("load-v4")
def test_well_formed_v4_loads_on_the_v4_library(full):
    fresh(full)
    data = build_v4(9000)
    path = sd(full, "v4.kmodel", data)
    assert full.ok(f"import KPU as kpu\nt = kpu.load({path!r})\nprint(t)\nkpu.deinit(t)") == repr_of(path, len(data))


@row("load-v5-faults")
@row("cpu-fault")
def test_v5_and_bad_v4_fault_the_v4_library(full):
    for name in ("v5_conv_relu", "broken_v4_bad_version", "broken_v4_wrong_target"):
        fresh(full)
        path = sd(full, name + ".kmodel", fixture(name))
        got = full.send_and_read(f"import KPU as kpu\nkpu.load({path!r})", 1.0)
        assert got.startswith(b"OK"), got
        assert_core_dump(full, got[2:])


@row("load-huge-layer-count")
def test_v3_layer_count_past_ram_faults(full, minimum):
    for c in (full, minimum):
        fresh(c)
        path = sd(c, "huge.kmodel", fixture("broken_huge_layer_count"))
        got = c.send_and_read(f"import KPU as kpu\nkpu.load({path!r})", 1.0)
        assert_core_dump(c, got[2:])


@row("load-arguments")
def test_load_arguments_and_the_path_rule(full):
    fresh(full)
    data = build_v3(1000)
    bak = sd(full, "a.kmodel.bak", data)
    sd(full, "m.bin", data)
    full.ok("import KPU as kpu")
    assert full.ok(f"t = kpu.load({bak!r})\nprint(t)\nkpu.deinit(t)") == repr_of(bak, 1000)
    assert full.error("kpu.load('/sd/m.bin')")[1] == \
        "ValueError: [MAIXPY]kpu: model format don't match, only supply .kmodel "
    assert full.error("kpu.load(0)")[1] == "ValueError: [MAIXPY]kpu: model_addr must > 0 "
    assert full.error("kpu.load(-4096)")[1] == "ValueError: [MAIXPY]kpu: model_addr must > 0 "
    assert full.error("kpu.load(1.5)")[1] == "TypeError: [MAIXPY]kpu: only accept int or string"


@row("load-encrypted")
def test_encrypted_models_need_the_chips_key(full):
    fresh(full)
    smdl = sd(full, "e.smodel", b"LDMS" + struct.pack("<I", 64) + bytes(64))
    emdl = sd(full, "e.emodel", b"LDME" + struct.pack("<I", 64) + bytes(64))
    out, err = full.error(f"import KPU as kpu\nkpu.load({smdl!r})")
    assert out == b"encrypted model\r\r\n"
    assert err == "ValueError: [MAIXPY]kpu: load error:2004, ERR_DECRYPT: check smodel match with your board"
    assert full.error(f"kpu.load({emdl!r})")[1] == "ValueError: [MAIXPY]kpu: load error:2015, ERR_UNKNOWN"


# -- kpu.load(offset), load_flash ----------------------------------------------------------------
@row("flash-v3-loads")
def test_v3_at_a_flash_offset_loads(full):
    fresh(full)
    model = build_v3(30_000, seed=5)
    full.sim.storage.flash.write(0x300000, model)
    assert full.ok("import KPU as kpu\nt = kpu.load(0x300000)\nprint(t)\nprint(t.model_addr(), t.model_path())\n"
                   "kpu.deinit(t)") == repr_of("", 30_000, 0x300000) + b"3145728 None\r\n"


@row("flash-no-model")
def test_erased_or_firmware_offsets_are_2002(full):
    fresh(full)
    full.sim.storage.flash.erase(0x500000, 4096)
    err = f"ValueError: [MAIXPY]kpu: load error:2002, {V34}"
    assert full.error("import KPU as kpu\nkpu.load(0x500000)")[1] == err
    assert full.error("kpu.load(0x10000)")[1] == err


@row("flash-body-size-zero")
def test_body_size_zero_at_an_offset_is_2003(full):
    fresh(full)
    full.sim.storage.flash.write(0x600000, fixture("broken_body_size_zero"))
    assert full.error("import KPU as kpu\nkpu.load(0x600000)")[1] == E2003


@row("flash-model-size-err")
def test_header_size_over_6_mib_prints_model_size_err(full):
    fresh(full)
    head = struct.pack("<7I", 3, 1, 0, 1, 0, 65536, 1) + struct.pack("<II", 0, 16) \
        + struct.pack("<II", 0x2800, 7 * 1024 * 1024)
    full.sim.storage.flash.write(0x700000, head)
    out, err = full.error("import KPU as kpu\nkpu.load(0x700000)")
    assert (out, err) == (b"model size err\r\r\n", E2003)


@row("flash-24-bit-wrap")
def test_flash_offsets_wrap_at_24_bits(full):
    fresh(full)
    full.sim.storage.flash.write(0x300000, build_v3(20_000, seed=7))
    assert full.ok("import KPU as kpu\nt = kpu.load(0x1300000)\nprint(t)\nkpu.deinit(t)") == \
        repr_of("", 20_000, 0x1300000)


@row("load-flash")
def test_load_flash_prints_the_spi_clock_and_loads(full):
    fresh(full)
    full.sim.storage.flash.write(0x300000, build_v3(30_000, seed=5))
    out = full.ok("import KPU as kpu\nt = kpu.load_flash(0x300000, 1, 1, 80000000)\nprint(t)\nkpu.deinit(t)")
    assert out == b"SPI freq 80600000 Hz\r\r\n" + repr_of("", 30_000, 0x300000)
    out, err = full.error("kpu.load_flash(0x300000, 1, 1, 'x')")
    assert err == ("ValueError: [MAIXPY]kpu: load_flash arg format error: "
                   "task=kpu.load_flash(flash_addr, is_dual_buf, batch_size, spi_speed)")
    assert full.ok("import gc\ngc.collect()") == b"kpu_net __del__\r\r\n"   # that object was not freed
    assert full.error("kpu.load_flash(0, 1, 1, 1)")[1] == "ValueError: [MAIXPY]kpu: model_addr must > 0 "


# -- objects, finalisers, use after deinit --------------------------------------------------------
@row("orphan-finaliser")
def test_a_failed_load_leaves_its_kpu_net_to_the_gc(full):
    fresh(full)
    assert full.error("import KPU as kpu, gc\nkpu.load('/sd/nope.kmodel')")[1] == E2005
    assert full.ok("print('before')") == b"before\r\n"          # not at once
    assert full.ok("gc.collect()") == b"kpu_net __del__\r\r\n"
    assert full.ok("gc.collect()") == b""                        # once
    full.error("kpu.load('/sd/nope.kmodel')")
    full.port.write(b"\x04")                                   # an empty program: soft reset
    got = full.read_until(RAW_BANNER)
    assert got.startswith(b"OK\r\nkpu_net __del__\r\r\n[MaixPy]: soft reboot\r\n"), got[:120]


@row("deinit")
def test_deinit_twice_and_a_non_task(full):
    fresh(full)
    path = sd(full, "d.kmodel", build_v3(2000))
    assert full.ok(f"import KPU as kpu\nt = kpu.load({path!r})\nprint(kpu.deinit(t), kpu.deinit(t))") == \
        b"True True\r\n"
    assert full.error("kpu.deinit('x')")[1] == "TypeError: [MAIXPY]kpu: kpu_net type error"


@row("use-after-deinit-faults")
def test_forward_and_set_outputs_after_deinit_fault(full):
    for call in ("kpu.forward(t, [1.0])", "kpu.set_outputs(t, 0, 1, 1, 1)"):
        fresh(full)
        path = sd(full, "d.kmodel", build_v3(2000))
        full.ok(f"import KPU as kpu\nt = kpu.load({path!r})\nkpu.deinit(t)")
        got = full.send_and_read(call, 1.0)
        assert_core_dump(full, got[2:])


@row("forward-fmap")
def test_forward_returns_a_kpu_fmap(full):
    fresh(full)
    path = sd(full, "f.kmodel", build_v3(5000))
    out = full.ok(f"import KPU as kpu\nt = kpu.load({path!r})\nf = kpu.forward(t, [0.5] * 4)\n"
                  "print(type(f).__name__, type(f[:]).__name__, f.typecode(), kpu.forward(123, [1]))")
    assert out == b"kpu_fmap tuple B None\r\n"
    assert full.error("len(f)")[1] == "TypeError: object of type 'kpu_fmap' has no len()"
    assert full.error("kpu.forward(t, 'img')")[1] == "ValueError: input not support"
    assert full.error("kpu.forward(t, [])")[1] == "ValueError: [MAIXPY]kpu: check input list format err!"
    full.ok("kpu.deinit(t)")


@row("forward-v4-needs-set-outputs")
def test_v4_forward_needs_every_output_shaped(full):
    fresh(full)
    path = sd(full, "v4.kmodel", build_v4(9000))
    full.ok(f"import KPU as kpu\nt = kpu.load({path!r})")
    assert full.error("kpu.forward(t, [1.0])")[1] == "OSError: ERR_OUTPUTS_SET: need kpu.set_outputs() to set shape"
    full.ok("kpu.deinit(t)")


@row("set-outputs")
def test_set_outputs_prints_and_returns_false(full):
    fresh(full)
    v3 = sd(full, "s3.kmodel", build_v3(3000))
    v4 = sd(full, "s4.kmodel", build_v4(9000))
    full.ok(f"import KPU as kpu\nt3 = kpu.load({v3!r})\nt4 = kpu.load({v4!r})")
    assert full.ok("print(kpu.set_outputs(t3, 0, 1, 1, 1))") == \
        b"[MAIXPY]kpu: set_outputs ctx error, maybe init err:2002\r\r\nFalse\r\n"
    assert full.ok("print(kpu.set_outputs(t4, 9, 1, 1, 1))") == \
        b"[MAIXPY]kpu: set_outputs arg value error:kmodel output idx 9 out of range\r\r\nFalse\r\n"
    out = full.ok("print(kpu.set_outputs(t4, 0, 1, 1, 1))")
    assert re.fullmatch(rb"w\*h\*ch!=\d+\r\r\n\[MAIXPY\]kpu: set_outputs arg value error: "
                        rb"w,c,ch size not match output size\r\r\nFalse\r\n", out), out
    assert full.error("kpu.set_outputs(t4, 0, 1, 1, 'x')")[1] == (
        "ValueError: [MAIXPY]kpu: set_outputs arg format error: set_outputs(task, int idx, int w, int h, int ch)")
    full.ok("kpu.deinit(t3)\nkpu.deinit(t4)")


@row("kpu-members")
def test_kpu_module_members(full):
    fresh(full)
    assert full.ok("import KPU as kpu\nprint(sorted(k for k in dir(kpu) if not k.startswith('_')))") == (
        b"['classifier', 'deinit', 'face_compare', 'face_encode', 'fmap', 'fmap_free', 'forward', "
        b"'get_output', 'init_yolo2', 'load', 'load_flash', 'memtest', 'netinfo', 'run_yolo2', "
        b"'set_layers', 'set_outputs']\r\n")


@row("memtest")
def test_memtest_prints_two_lines(full):
    fresh(full)
    out = full.ok("import KPU as kpu\nkpu.memtest()")
    assert re.fullmatch(rb"###free gc heap memory : \d+ KB\r\r\n###free sys heap memory: %d KB\r\r\n"
                        % (HEAP_AFTER_BOOT // 1024), out), out


# -- uhashlib on the SHA-256 engine ---------------------------------------------------------------
@row("sha256-only")
def test_uhashlib_is_the_engines_sha256(full):
    fresh(full)
    assert full.ok("import uhashlib, ubinascii\nprint([k for k in dir(uhashlib) if k[0] != '_'])\n"
                   "print(ubinascii.hexlify(uhashlib.sha256(b'abc').digest()))") == (
        b"['sha256']\r\n"
        b"b'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'\r\n")
    assert full.error("uhashlib.sha256(b'abc').hexdigest()")[1] == \
        "AttributeError: 'sha256' object has no attribute 'hexdigest'"


@row("sha256-engine-limits")
def test_digest_once_no_interleaving(full):
    fresh(full)
    good = b"'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'"
    out = full.ok("import uhashlib, ubinascii\nh = uhashlib.sha256(b'abc')\n"
                  "print(ubinascii.hexlify(h.digest()), ubinascii.hexlify(h.digest()))")
    first, second = out.split()
    assert first == b"b" + good and second != first
    out = full.ok("a = uhashlib.sha256()\nb = uhashlib.sha256()\na.update(b'a' * 100)\nb.update(b'b' * 100)\n"
                  "print(ubinascii.hexlify(a.digest()))")
    assert out != b"b'" + b"%s" % __import__("hashlib").sha256(b"a" * 100).hexdigest().encode() + b"'\r\n"


@row("sha256-4mib")
def test_inputs_of_4_mib_minus_72_bytes_hash_wrong(full):
    import hashlib
    fresh(full)
    for n, right in ((4 * 1024 * 1024 - 73, True), (4 * 1024 * 1024 - 72, False)):
        out = full.ok("import uhashlib, ubinascii\nh = uhashlib.sha256()\nz = bytes(65536)\n"
                      f"n = {n}\nwhile n >= 65536:\n    h.update(z)\n    n -= 65536\n"
                      "h.update(bytes(n))\nprint(ubinascii.hexlify(h.digest()))")
        want = b"b'%s'\r\n" % hashlib.sha256(bytes(n)).hexdigest().encode()
        assert (out == want) is right, (n, out)


# -- uos ------------------------------------------------------------------------------------------
@row("uos-members")
def test_uos_members_and_statvfs(full):
    fresh(full)
    assert full.ok("import uos\nprint(sorted(k for k in dir(uos) if not k.startswith('_')))") == (
        b"['VfsFat', 'VfsSpiffs', 'chdir', 'dupterm', 'flash_format', 'getcwd', 'ilistdir', 'listdir', "
        b"'mkdir', 'mount', 'remove', 'rename', 'rmdir', 'set_REPLio', 'stat', 'statvfs', 'sync', "
        b"'umount', 'uname', 'urandom']\r\n")
    assert full.ok("print(uos.statvfs('/flash'))") == b"(131072, 131072, 21, 21, 21, 0, 0, 0, 0, 128)\r\n"


@row("soft-reboot")
def test_soft_reset_finalises_then_reboots(full):
    fresh(full)
    path = sd(full, "k.kmodel", build_v3(2000))
    full.ok(f"import KPU as kpu\nkeep = kpu.load({path!r})\nalso = kpu.load({path!r})")
    full.port.write(b"\x04")
    got = full.read_until(RAW_BANNER)
    assert got.startswith(b"OK\r\nkpu_net __del__\r\r\nkpu_net __del__\r\r\n[MaixPy]: soft reboot\r\n"
                          b"[MaixPy] gc heap=0x802ffd80-0x8037fd80(524288)\r\n"), got[:200]


def test_ledger_rows_each_have_a_test():
    """Every row of docs/fidelity.md names a test in this module, and every test here a row."""
    ledger = (Path(__file__).resolve().parent.parent / "docs" / "fidelity.md").read_text()
    rows = set(re.findall(r"^\| `([a-z0-9-]+)` \|", ledger, re.M))
    marked = {m.args[0] for name, obj in globals().items() if name.startswith("test_")
              for m in getattr(obj, "pytestmark", []) if m.name == "row"}
    assert rows, "no rows found in docs/fidelity.md"
    assert marked == rows, f"rows without a test: {sorted(rows - marked)}; tests without a row: {sorted(marked - rows)}"
