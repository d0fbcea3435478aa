"""kmodels on the reference C-SDK firmware under QEMU: loads from file and flash, the loader's codes
for bad models, memory returned by deinit, the memory threshold bisected to 4 KiB.

Expectations come from the csdk-agent-reference profile (texts, codes, band), as the suites will
take them. Big models reach the board as their lead only (the header, output table and layer
headers: ~1 KiB over the UART instead of megabytes): as a file, uploaded and then grown to the
model's size with TRUNC (zeros after the lead); in flash, written with FPUT and loaded with
``LOAD FLASH offset size``. The SDK loader allocates from the header alone and never interprets the
bodies while loading, so the memory error sees the full model; the agent sizes the buffer the
same way for both routes (test_file_and_flash_loads_take_the_same_memory).
"""
from __future__ import annotations

import pytest

from agent_qemu import AgentBoard, need_tools
from hil import threshold
from hil.agent.client import AgentClient
from hil.errors import KpuLoadError, MemoryOverflow
from hil.firmware import load_profile
from hil.kmodel.build import BROKEN_KINDS, DEFAULT_MAIN_MEM, broken, build_v3, build_v4, build_v5_stub
from hil.kmodel.fixtures import get_fixture
from hil.kmodel.format import header_bytes_needed

PROFILE = load_profile("csdk-agent-reference")
FLASH_A, FLASH_B = 0x300000, 0x500000
KiB = 1024

# What this firmware answers for each broken model: a profile ErrorTexts key, or "load".
# Differs from MaixPy (hil/kmodel/build.py EXPECTED_ERROR) in one place: the SDK's
# kpu_load_kmodel never looks at the first layer, so first_layer_not_conv loads.
AGENT_EXPECTED = {
    "empty": "version", "short_header": "version", "truncated": "read_file",
    "truncated_in_tables": "read_file", "v4_truncated": "read_file", "bad_version": "version",
    "v3_arch_nonzero": "version", "v4_bad_version": "version", "v4_wrong_target": "version",
    "body_past_end": "read_file", "body_size_zero": "body_size", "body_size_negative": "body_size",
    "zero_layers": "body_size", "huge_layer_count": "read_file", "first_layer_not_conv": "load",
    "random_bytes": "version", "erased_flash": "version", "v5_model": "version",
}


@pytest.fixture(scope="module")
def qboard(tmp_path_factory):
    need_tools()
    board = AgentBoard(tmp_path_factory.mktemp("qemu-kpu"))
    board.start()
    yield board
    board.close()


@pytest.fixture
def agent(qboard) -> AgentClient:
    c = qboard.ensure()
    c.deinit_all()
    return c


def lead(model: bytes) -> bytes:
    """The model's header and tables: all the loader reads before it allocates."""
    need = header_bytes_needed(model[:64])
    return model[:header_bytes_needed(model[:need])]


def check_error(exc: KpuLoadError, key: str) -> None:
    text = getattr(PROFILE.errors, key)
    assert (exc.text, exc.code) == (text, PROFILE.errors.code_of(text))


def free(agent: AgentClient) -> int:
    return agent.memory().heap_free


# -- loading ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [3, 4])
def test_load_from_file_and_flash(agent, version) -> None:
    model = (build_v3 if version == 3 else build_v4)(8192, main_mem=16 * KiB, seed=version)
    base = free(agent)
    agent.put(f"/sd/hil/v{version}.kmodel", model)
    a = agent.load_file(f"/sd/hil/v{version}.kmodel")
    assert (a.version, a.size, a.main_mem) == (version, len(model), 16 * KiB)
    agent.flash_write(FLASH_A, model)
    b = agent.load_flash(FLASH_A)
    assert b.version == version and b.id != a.id and set(agent.models) == {a.id, b.id}
    assert agent.memory().models == 2
    agent.deinit(a)
    agent.deinit(b)
    assert free(agent) == base


def test_file_and_flash_loads_take_the_same_memory(agent) -> None:
    model = build_v3(40 * KiB, main_mem=DEFAULT_MAIN_MEM, seed=3)
    agent.put("/sd/hil/same.kmodel", model)
    agent.flash_write(FLASH_A, lead(model))         # only the lead: the rest of flash is whatever
    base = free(agent)
    via_file = agent.load_file("/sd/hil/same.kmodel")
    used_file = base - free(agent)
    agent.deinit(via_file)
    via_flash = agent.load_flash(FLASH_A, len(model))
    used_flash = base - free(agent)
    agent.deinit(via_flash)
    assert used_file == used_flash and len(model) + DEFAULT_MAIN_MEM <= used_file < len(model) + DEFAULT_MAIN_MEM + 256


def test_v4_main_memory_failure_frees_the_nncase_context(agent) -> None:
    """nncase_v0 keeps its context when try_load_model fails; the hook must free it."""
    model = build_v4(4096, main_mem=DEFAULT_MAIN_MEM, seed=4)
    huge = bytearray(model)
    huge[20:24] = (8 * 1024 * 1024).to_bytes(4, "little")      # main_mem larger than the SRAM
    agent.put("/sd/hil/v4_huge_main.kmodel", bytes(huge))
    base = free(agent)
    for _ in range(3):
        with pytest.raises(MemoryOverflow) as info:
            agent.load_file("/sd/hil/v4_huge_main.kmodel")
        check_error(info.value, "no_mem")
    assert free(agent) == base


@pytest.mark.parametrize("kind", BROKEN_KINDS)
def test_broken_models_get_the_loader_codes(agent, kind) -> None:
    path = f"/sd/hil/broken_{kind}.kmodel"
    agent.put(path, broken(kind, seed=1))
    base = free(agent)
    expect = AGENT_EXPECTED[kind]
    case = PROFILE.fixture_case(get_fixture(f"broken_{kind}"))      # what the suites will expect
    assert (case.outcome, case.error) == (("loads", "") if expect == "load" else ("error", expect)), case
    if expect == "load":
        agent.deinit(agent.load_file(path))
    else:
        with pytest.raises(KpuLoadError) as info:
            agent.load_file(path)
        check_error(info.value, expect)
    assert free(agent) == base, f"{kind}: a failed load left memory allocated"
    good = build_v3(2048, seed=9)
    agent.put("/sd/hil/good.kmodel", good)
    agent.deinit(agent.load_file("/sd/hil/good.kmodel"))


def test_v5_is_refused_as_a_version(agent) -> None:
    agent.flash_write(FLASH_B, build_v5_stub(seed=2))
    with pytest.raises(KpuLoadError) as info:
        agent.load_flash(FLASH_B)
    check_error(info.value, "version")


@pytest.mark.parametrize("offset, key", [(0, "model_addr"), (-4096, "model_addr"), (0x1000, "version"),
                                         (0xF00000, "version")],
                         ids=["zero", "negative", "inside-firmware", "erased"])
def test_flash_offsets_that_hold_no_model(agent, offset, key) -> None:
    if offset == 0xF00000:
        agent.flash_write(offset, b"\xff" * 64)
    with pytest.raises(KpuLoadError) as info:
        agent.load_flash(offset)
    check_error(info.value, key)


def test_flash_offset_past_the_end(agent) -> None:
    with pytest.raises(KpuLoadError, match="ERR 2001 PARAM: flash offset past the end of flash") as info:
        agent.load_flash(16 * 1024 * 1024)
    assert info.value.code == 2001


def test_missing_file_and_unknown_handle(agent) -> None:
    with pytest.raises(KpuLoadError) as info:
        agent.load_file("/sd/hil/not-there.kmodel")
    check_error(info.value, "missing_file")
    ans = agent.exchange("DEINIT", 424242)
    assert ans.status == PROFILE.errors.param


def test_models_full(agent) -> None:
    model = build_v3(1024, main_mem=8 * KiB, seed=5)
    agent.put("/sd/hil/small.kmodel", model)
    base = free(agent)
    loaded = [agent.load_file("/sd/hil/small.kmodel") for _ in range(PROFILE.kpu.max_models)]
    with pytest.raises(KpuLoadError) as info:
        agent.load_file("/sd/hil/small.kmodel")
    check_error(info.value, "models_full")
    assert agent.deinit_all() == len(loaded)
    assert free(agent) == base


# -- memory ---------------------------------------------------------------------------------------------
def big_model_on_flash(agent: AgentClient, offset: int, size: int, seed: int) -> None:
    agent.flash_write(offset, lead(build_v3(size, main_mem=DEFAULT_MAIN_MEM, seed=seed)))


def big_model_file(agent: AgentClient, path: str, size: int, seed: int) -> None:
    agent.put(path, lead(build_v3(size, main_mem=DEFAULT_MAIN_MEM, seed=seed)))
    agent.truncate(path, size)


def test_switching_returns_memory(agent) -> None:
    big_model_on_flash(agent, FLASH_A, 2_000_000, 1)
    big_model_on_flash(agent, FLASH_B, 3_000_000, 2)
    base = free(agent)
    for cycle in range(20):
        for offset, size in ((FLASH_A, 2_000_000), (FLASH_B, 3_000_000)):
            m = agent.load_flash(offset, size)
            assert m.heap_free < base - size
            after = agent.deinit(m)
            lost = base - after
            assert lost <= PROFILE.memory.leak_tolerance, f"cycle {cycle}: {lost} bytes not returned"


def test_second_big_load_without_deinit_runs_out_of_memory(agent) -> None:
    big_model_on_flash(agent, FLASH_A, 3_500_000, 1)
    big_model_on_flash(agent, FLASH_B, 3_500_000, 2)
    base = free(agent)
    a = agent.load_flash(FLASH_A, 3_500_000)
    with pytest.raises(MemoryOverflow) as info:
        agent.load_flash(FLASH_B, 3_500_000)
    check_error(info.value, "no_mem")
    agent.deinit(a)
    agent.deinit(agent.load_flash(FLASH_B, 3_500_000))
    assert free(agent) == base


def test_memory_threshold_bisected_to_4_kib(agent) -> None:
    """The largest v3 model file that loads, bisected from bounds taken from the free heap (as the
    suite does), within the profile's band; one step past it the exact memory error; the same edge
    from flash; the board still loads a small model and has its memory back."""
    path = "/sd/hil/threshold_probe.kmodel"

    def loads_from(route: str) -> threshold.Loads:
        def loads(size: int) -> bool:
            if route == "file":
                big_model_file(agent, path, size, seed=7)
            else:
                big_model_on_flash(agent, FLASH_A, size, seed=7)
            try:
                m = agent.load_file(path) if route == "file" else agent.load_flash(FLASH_A, size)
            except MemoryOverflow as exc:
                check_error(exc, "no_mem")
                return False
            agent.deinit(m)
            return True
        return loads

    base = free(agent)
    edge = threshold.search_from_free_heap(loads_from("file"), base)
    assert edge.fail - edge.ok == threshold.STEP
    low, high = PROFILE.memory.threshold_band
    assert low <= edge.ok <= high, f"threshold {edge.ok} outside {low}..{high} ({edge.describe()})"
    assert edge.count <= 14, edge.describe()
    flash = loads_from("flash")
    assert flash(edge.ok) and not flash(edge.fail), "the flash route has another edge than the file route"
    assert free(agent) == base
    small = build_v3(4096, seed=8)
    agent.put("/sd/hil/after.kmodel", small)
    agent.deinit(agent.load_file("/sd/hil/after.kmodel"))
    print(f"threshold {edge.ok} bytes, {edge.count} probes: {edge.describe()}")
