"""MaixPy firmware emulation: kpu.load outcomes per firmware profile, memory model, task life."""
from __future__ import annotations

import re

import pytest

from hil.firmware import available_profiles, load_profile
from hil.kmodel.build import BROKEN_KINDS, DEFAULT_MAIN_MEM, EXPECTED_ERROR, broken, build_v3, \
    build_v4, build_v5_stub
from k210sim.maixpy.memory import SRAM_GENERAL, malloc_cost

from maixpy_fakes import Board

PROFILES = [p for p in available_profiles() if p.startswith("maixpy-")]
MODEL_OFFSET = 0x300000


@pytest.fixture(scope="module")
def boards(tmp_path_factory):
    """One running board per profile, in the raw REPL with KPU imported."""
    made: dict[str, Board] = {}

    def get(profile: str) -> Board:
        if profile not in made:
            b = Board(tmp_path_factory.mktemp(profile), profile).start()
            b.host.enter_raw()
            assert b.host.raw_exec("import KPU as kpu, gc\nfrom Maix import utils") == (b"", b"")
            made[profile] = b
        return made[profile]

    yield get
    for b in made.values():
        b.stop()


def run(b: Board, code: str) -> tuple[str, str]:
    out, err = b.host.raw_exec(code, timeout=30)
    return out.decode(), err.decode()


def last_line(err: str) -> str:
    return err.rstrip("\r\n").split("\r\n")[-1]


def try_load(b: Board, arg: str, call: str = "load") -> str:
    """repr of the task, or the exception line; the task is deinit'ed again."""
    out, err = run(b, f"t = kpu.{call}({arg})\nprint(t)\nkpu.deinit(t)\ndel t")
    return out.rstrip("\r\n") if not err else last_line(err)


def expected(profile, key: str, flash: bool = False) -> str:
    text = getattr(profile.errors, key)
    if flash:
        text = text.replace("kpu: load error:", "kpu: load_flash error:")
    return ("OSError: " if key == "missing_file" else "ValueError: ") + text


@pytest.mark.parametrize("name", PROFILES)
def test_load_outcomes_with_exact_texts(boards, name):
    b = boards(name)
    p = b.profile
    sd, fl = b.storage.sd_dir, b.storage.flashfs_root
    (sd / "m.kmodel").write_bytes(build_v3(20000))
    (fl / "f.kmodel").write_bytes(build_v3(6000, seed=2))
    (sd / "v4.kmodel").write_bytes(build_v4(9000))
    (sd / "v5.kmodel").write_bytes(build_v5_stub())
    (sd / "a.kmodel.bak").write_bytes(build_v3(1000))
    (sd / "m.bin").write_bytes(build_v3(1000))
    ok = '{"model_addr": %d, "model_size": %d, "model_path": "%s", "net_args": "(null)"}'
    assert try_load(b, "'/sd/m.kmodel'") == ok % (0, 20000, "/sd/m.kmodel")
    assert try_load(b, "'/flash/f.kmodel'") == ok % (0, 6000, "/flash/f.kmodel")
    assert try_load(b, "'m.kmodel'") == ok % (0, 20000, "m.kmodel")        # cwd is /sd
    assert try_load(b, "'/sd/a.kmodel.bak'") == ok % (0, 1000, "/sd/a.kmodel.bak")  # strstr
    if 4 in p.kpu.load_versions:
        assert try_load(b, "'/sd/v4.kmodel'") == ok % (0, 9000, "/sd/v4.kmodel")
    else:
        assert try_load(b, "'/sd/v4.kmodel'") == expected(p, "version")
        assert p.errors.version.endswith("only support kmodel V3 now")
    assert try_load(b, "'/sd/v5.kmodel'") == expected(p, "version")
    assert try_load(b, "'/sd/m.bin'") == expected(p, "path_format")
    assert try_load(b, "'/sd/none.kmodel'") == expected(p, "missing_file")
    assert try_load(b, "0") == expected(p, "model_addr")
    assert try_load(b, "-4096") == expected(p, "model_addr")
    assert try_load(b, "1.5") == "TypeError: [MAIXPY]kpu: only accept int or string"
    # flash offsets: blank, inside "firmware", past the end, a real model
    flash = b.storage.flash
    flash.erase(MODEL_OFFSET, 0x10000)
    flash.write(0x1000, bytes(range(256)) * 64)
    assert try_load(b, hex(MODEL_OFFSET)) == expected(p, "version")
    assert try_load(b, "0x1000") == expected(p, "version")
    assert try_load(b, "0x2000000") == expected(p, "version")
    model = build_v3(30000, seed=5)
    flash.write(MODEL_OFFSET, model)
    assert try_load(b, hex(MODEL_OFFSET)) == ok % (MODEL_OFFSET, 30000, "(null)")
    assert try_load(b, "0x300000, 1, 1, 40000000", "load_flash") == \
        ok % (MODEL_OFFSET, 30000, "(null)")
    assert try_load(b, "0x310000, 1, 1, 40000000", "load_flash") == expected(p, "version", True)
    assert try_load(b, "0x300000", "load_flash").startswith("TypeError")
    assert try_load(b, "0x300000, 1, 1, 'x'", "load_flash") == (
        "ValueError: [MAIXPY]kpu: load_flash arg format error: "
        "task=kpu.load_flash(flash_addr, is_dual_buf, batch_size, spi_speed)")


@pytest.mark.parametrize("name", PROFILES)
@pytest.mark.parametrize("kind", BROKEN_KINDS)
def test_broken_models_fail_with_the_firmware_error(boards, name, kind):
    b = boards(name)
    p = b.profile
    (b.storage.sd_dir / "bad.kmodel").write_bytes(broken(kind))
    key = EXPECTED_ERROR[kind]
    if kind.startswith("v4_") and 4 not in p.kpu.load_versions:
        key = "version"
    assert try_load(b, "'/sd/bad.kmodel'") == expected(p, key)


def test_missing_card(tmp_path):
    b = Board(tmp_path / "b", sd=False).start()
    try:
        b.host.enter_raw()
        out, err = b.host.raw_exec("import KPU as kpu\nkpu.load('/sd/m.kmodel')")
        assert last_line(err.decode()) == "OSError: [Errno 2] ENOENT"
    finally:
        b.stop()


def free_after_boot(profile) -> int:
    sim = profile.sim
    return SRAM_GENERAL - sim.runtime_ram - profile.memory.gc_heap_default - sim.boot_sys_alloc


@pytest.mark.parametrize("name", PROFILES)
def test_largest_loadable_v3_is_in_the_profile_band(tmp_path, name):
    b = Board(tmp_path / "b", name).start()
    p = b.profile
    path = b.storage.sd_dir / "probe.kmodel"
    b.host.enter_raw()
    run(b, "import KPU as kpu\nfrom Maix import utils")
    leaked = 0

    def loads(size: int) -> bool:
        nonlocal leaked
        path.write_bytes(build_v3(size))
        result = try_load(b, "'/sd/probe.kmodel'")
        assert result.startswith("{") or result == expected(p, "no_mem"), result
        leaked += p.sim.deinit_leak if result.startswith("{") else 0
        return result.startswith("{")

    try:
        lo, hi = 64 * 1024, 8 * 1024 * 1024     # loads, does not load
        assert loads(lo) and not loads(hi)
        probes = 0
        while hi - lo > 4096:
            mid = (lo + hi) // 2 // 8 * 8
            lo, hi = (mid, hi) if loads(mid) else (lo, mid)
            probes += 1
        assert probes <= 12
        band_lo, band_hi = p.memory.threshold_band
        if p.sim.deinit_leak == 0:
            # exact: round_up(n, 8) + 16 + the main_mem allocation must fit in the free heap
            exact = (free_after_boot(p) - malloc_cost(DEFAULT_MAIN_MEM) - 16) // 8 * 8
            assert lo <= exact < lo + 4096
            assert band_lo <= lo <= band_hi, (lo, p.memory.threshold_band)
        else:   # the regressed build's image grew: the suites must see it fall below the band
            assert lo < band_lo
        out, _ = run(b, "print(utils.heap_free())")
        assert int(out) == free_after_boot(p) - leaked
    finally:
        b.stop()


@pytest.mark.parametrize("name", PROFILES)
def test_deinit_restores_heap_free_or_leaks(tmp_path, name):
    b = Board(tmp_path / "b", name).start()
    try:
        b.host.enter_raw()
        (b.storage.sd_dir / "m.kmodel").write_bytes(build_v3(500_000))
        base = int(run(b, "import KPU as kpu\nfrom Maix import utils\nprint(utils.heap_free())")[0])
        assert base == free_after_boot(b.profile)
        frees = []
        for _ in range(4):
            out, err = run(b, "t = kpu.load('/sd/m.kmodel')\nloaded = utils.heap_free()\n"
                              "print(kpu.deinit(t), kpu.deinit(t), loaded, utils.heap_free())")
            assert err == ""
            first, second, loaded, after = out.split()
            assert (first, second) == ("True", "True")      # a second deinit is a no-op
            assert int(loaded) == int(after) - (malloc_cost(500_000) + malloc_cost(DEFAULT_MAIN_MEM)
                                                 - b.profile.sim.deinit_leak)
            frees.append(int(after))
        leak = b.profile.sim.deinit_leak
        assert frees == [base - leak * (i + 1) for i in range(4)]
    finally:
        b.stop()


def test_switching_big_models_needs_deinit(tmp_path):
    b = Board(tmp_path / "b").start()
    try:
        b.host.enter_raw()
        size = int(free_after_boot(b.profile) * 0.6) // 8 * 8
        (b.storage.sd_dir / "a.kmodel").write_bytes(build_v3(size, seed=1))
        (b.storage.sd_dir / "b.kmodel").write_bytes(build_v3(size, seed=2))
        run(b, "import KPU as kpu, gc")
        assert run(b, "a = kpu.load('/sd/a.kmodel')") == ("", "")
        _, err = run(b, "b = kpu.load('/sd/b.kmodel')")
        assert last_line(err) == expected(b.profile, "no_mem")
        _, err = run(b, "a = kpu.load('/sd/b.kmodel')")     # rebinding does not free a yet
        assert last_line(err) == expected(b.profile, "no_mem")
        assert run(b, "kpu.deinit(a)\nb = kpu.load('/sd/b.kmodel')\nprint(b.model_size())") == \
            (f"{size}\r\n", "")
    finally:
        b.stop()


def test_models_full_after_max_models(tmp_path):
    b = Board(tmp_path / "b").start()
    try:
        b.host.enter_raw()
        (b.storage.sd_dir / "s.kmodel").write_bytes(build_v3(2000))
        out, err = run(b, "import KPU as kpu\nts = [kpu.load('/sd/s.kmodel') for _ in range(5)]\n"
                          "print(len(ts))")
        assert (out, err) == ("5\r\n", "")
        _, err = run(b, "kpu.load('/sd/s.kmodel')")
        assert last_line(err) == expected(b.profile, "models_full")
        assert b.profile.errors.models_full.startswith("[MAIXPY]kpu: load error:2009, ")
        assert run(b, "kpu.deinit(ts[0])\nts[0] = kpu.load('/sd/s.kmodel')\nprint('ok')")[0] == "ok\r\n"
    finally:
        b.stop()


def test_kpu_net_del_on_collection_and_soft_reset(tmp_path):
    b = Board(tmp_path / "b").start()
    try:
        h = b.host
        h.enter_raw()
        (b.storage.sd_dir / "s.kmodel").write_bytes(build_v3(100_000))
        base = int(run(b, "import KPU as kpu, gc\nfrom Maix import utils\n"
                          "print(utils.heap_free())")[0])
        out, _ = run(b, "t = kpu.load('/sd/s.kmodel')\nt = None\nprint(utils.heap_free())")
        assert int(out) < base                                  # not freed until collected
        assert run(b, "gc.collect()\nprint(utils.heap_free())") == \
            (f"kpu_net __del__\r\r\n{base}\r\n", "")
        assert run(b, "kpu.load('/sd/s.kmodel')\ngc.collect()") == ("kpu_net __del__\r\r\n", "")
        run(b, "keep = kpu.load('/sd/s.kmodel')\nkpu.deinit(keep)\nkeep2 = kpu.load('/sd/s.kmodel')")
        h.send(b"\x04")
        got = h.read_until(b"raw REPL; CTRL-B to exit\r\n>")
        assert got.startswith(b"OK\r\nkpu_net __del__\r\r\nkpu_net __del__\r\r\n"
                              b"[MaixPy]: soft reboot\r\n")
        assert run(b, "from Maix import utils\nprint(utils.heap_free())") == (f"{base}\r\n", "")
    finally:
        b.stop()


def test_forward_set_outputs_and_deinit_use(tmp_path):
    b = Board(tmp_path / "b").start()
    try:
        b.host.enter_raw()
        (b.storage.sd_dir / "v3.kmodel").write_bytes(build_v3(5000))
        (b.storage.sd_dir / "v4.kmodel").write_bytes(build_v4(5000))
        run(b, "import KPU as kpu\nt3 = kpu.load('/sd/v3.kmodel')\nt4 = kpu.load('/sd/v4.kmodel')")
        out, err = run(b, "r = kpu.forward(t3, [0.5] * 4)\nprint(len(r), r == kpu.forward(t3, [0.5] * 4),"
                          " all(0 <= v <= 1 for v in r))")
        assert (out, err) == ("10 True True\r\n", "")
        _, err = run(b, "kpu.forward(t4, [1.0])")
        assert last_line(err) == "OSError: " + b.profile.errors.set_outputs
        assert run(b, "print(kpu.set_outputs(t4, 0, 2, 3, 4), len(kpu.forward(t4, [1.0])))") == \
            ("True 24\r\n", "")
        out, _ = run(b, "print(kpu.set_outputs(t4, 5, 1, 1, 1))")
        assert out == "[MAIXPY]kpu: set_outputs arg value error:kmodel output idx 5 out of range\r\r\nFalse\r\n"
        _, err = run(b, "kpu.deinit(t3)\nkpu.forward(t3, [1.0])")
        assert last_line(err) == "OSError: ERR_PARAM: please check param, load address or kmodel file name"
        _, err = run(b, "kpu.deinit('x')")
        assert last_line(err) == "TypeError: [MAIXPY]kpu: kpu_net type error"
        _, err = run(b, "kpu.forward(t4, 'img')")
        assert last_line(err) == "ValueError: input not support"
    finally:
        b.stop()


def test_memtest_prints_the_two_lines(tmp_path):
    b = Board(tmp_path / "b").start()
    try:
        b.host.enter_raw()
        out, err = run(b, "import KPU as kpu\nkpu.memtest()")
        assert err == ""
        m = re.fullmatch(r"###free gc heap memory : (\d+) KB\r\r\n###free sys heap memory: (\d+) KB\r\r\n",
                         out)
        assert m, out
        assert int(m.group(2)) == free_after_boot(b.profile) // 1024
        assert 256 < int(m.group(1)) < 512
    finally:
        b.stop()


def test_load_flash_needs_less_memory_than_load(tmp_path):
    b = Board(tmp_path / "b").start()
    try:
        b.host.enter_raw()
        size = free_after_boot(b.profile) + 100_000
        b.storage.flash.write(MODEL_OFFSET, build_v3(size))
        run(b, "import KPU as kpu")
        _, err = run(b, f"kpu.load({MODEL_OFFSET})")
        assert last_line(err) == expected(b.profile, "no_mem")
        out, err = run(b, f"t = kpu.load_flash({MODEL_OFFSET}, 1, 1, 40000000)\nprint(t.model_size())")
        assert (out, err) == (f"{size}\r\n", "")
    finally:
        b.stop()


def test_profile_without_sim_table_is_refused(tmp_path):
    from dataclasses import replace
    from hil.errors import SimError
    from k210sim.maixpy import MaixPyFirmware
    b = Board(tmp_path / "b")
    with pytest.raises(SimError, match="has no \\[sim\\] table"):
        MaixPyFirmware(b.ctx, replace(load_profile("maixpy-v0.6.2-full"), sim=None))
