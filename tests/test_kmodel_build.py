"""hil.kmodel.build: exact-size v3/v4 models with real K210 conv layers, and broken variants."""
from __future__ import annotations

import hashlib
import random

import pytest

from hil.kmodel import layout
from hil.kmodel.build import (BROKEN_KINDS, EXPECTED_ERROR, MAX_SIZE, MIN_V3_SIZE, MIN_V4_SIZE,
                              broken, build_v3, build_v4)
from hil.kmodel.describe import describe
from hil.kmodel.format import KL_K210_CONV, parse_kmodel
from hil.kmodel.verdict import maixpy_load_error

MiB = 1024 * 1024
BUILDERS = {3: build_v3, 4: build_v4}
MINIMUM = {3: MIN_V3_SIZE, 4: MIN_V4_SIZE}


def sizes(version: int) -> list[int]:
    lo = MINIMUM[version]
    fixed = [lo, lo + 1, lo + 7, lo + 8, 1000, 1535, 1536, 1537, 1538, 2048, 4095, 4096, 4097,
             8191, 12345, 65536, 65537, 100_003, 590_000, 1 * MiB - 1, 1 * MiB, 2 * MiB + 3]
    rng = random.Random(version)
    return fixed + [rng.randrange(lo, 3 * MiB) for _ in range(12)]


def check_round_trip(version: int, size: int, main_mem: int, seed: int, kernel: int) -> bytes:
    data = BUILDERS[version](size, main_mem, seed, kernel)
    info = parse_kmodel(data, f"v{version}-{size}")
    assert len(data) == size == info.file_size
    assert info.version == version and info.main_mem == main_mem
    assert 0 <= info.model_size - size <= 7 and info.model_size % 8 == 0
    layers = describe(data)
    assert len(layers) == info.layer_count
    convs = [layer.conv for layer in layers if layer.conv is not None]
    assert convs and all(c.k in (1, 3) and 1 <= c.ic <= 1024 and 1 <= c.oc <= 1024 for c in convs)
    if version == 3:
        assert info.first_layer_is_conv and info.layer_types[0] == KL_K210_CONV
    else:
        assert info.target == 1 and info.layer_types[0] == 0x2001
    # the file ends with the last conv's weights: its body is padded by seeking only
    assert layers[-1].conv is not None
    assert layers[-1].offset + layers[-1].body_size == info.model_size
    return data


@pytest.mark.parametrize("version", [3, 4])
@pytest.mark.parametrize("kernel", [1, 3])
def test_round_trip_many_sizes(version: int, kernel: int) -> None:
    for size in sizes(version):
        check_round_trip(version, size, 65536, size % 7, kernel)


@pytest.mark.parametrize("version", [3, 4])
def test_round_trip_8_mib_and_max(version: int) -> None:
    data = check_round_trip(version, 8 * MiB, 2 * MiB, 9, 3)
    kernels = {layer.conv.k for layer in describe(data) if layer.conv is not None}
    assert kernels == {1, 3}                           # 3x3 feature layers, 1x1 heads
    info = parse_kmodel(BUILDERS[version](MAX_SIZE, 65536, 0, 1))
    assert info.file_size == MAX_SIZE


@pytest.mark.parametrize("version", [3, 4])
def test_kernel_choice_shows_in_the_feature_layers(version: int) -> None:
    for kernel in (1, 3):
        data = BUILDERS[version](40_000, 65536, 1, kernel)
        ks = [layer.conv.k for layer in describe(data) if layer.conv is not None]
        assert ks[0] == kernel and ks[-1] == 1


@pytest.mark.parametrize("version", [3, 4])
def test_deterministic_and_seeded(version: int) -> None:
    build = BUILDERS[version]
    a, b = build(50_000, 65536, 4), build(50_000, 65536, 4)
    assert a == b
    c = build(50_000, 65536, 5)
    assert len(c) == len(a) and c != a
    assert parse_kmodel(c) == parse_kmodel(a)          # the seed changes content, not structure
    assert hashlib.sha256(build(50_000, 70_000, 4)).digest() != hashlib.sha256(a).digest()


@pytest.mark.parametrize("version", [3, 4])
def test_too_small_names_the_minimum(version: int) -> None:
    with pytest.raises(ValueError, match=f"at least {MINIMUM[version]} bytes"):
        BUILDERS[version](MINIMUM[version] - 1)
    with pytest.raises(ValueError, match="at least"):
        BUILDERS[version](0)
    with pytest.raises(ValueError, match="flash"):
        BUILDERS[version](MAX_SIZE + 1)


def test_minimums_are_what_the_layout_says() -> None:
    assert layout.min_size(3) == MIN_V3_SIZE and layout.min_size(4) == MIN_V4_SIZE


def test_main_mem_too_small_names_the_need() -> None:
    with pytest.raises(ValueError, match="main_mem 100 is too small.*at least"):
        build_v3(200_000, main_mem=100)
    assert parse_kmodel(build_v3(200_000, main_mem=8192)).main_mem == 8192
    assert parse_kmodel(build_v3(600, main_mem=1)).main_mem == 1      # tiny: 1 byte of output
    with pytest.raises(ValueError, match="kernels are 1x1 or 3x3"):
        build_v3(5000, kernel=5)


def test_main_mem_is_honoured_in_both_versions() -> None:
    for mm in (8192, 65536, 5 * MiB, 0xFFFFFFFF):
        assert parse_kmodel(build_v3(30_000, mm)).main_mem == mm
        assert parse_kmodel(build_v4(30_000, mm)).main_mem == mm


def test_expected_errors_cover_every_kind_and_match_the_verdict() -> None:
    assert set(EXPECTED_ERROR) == set(BROKEN_KINDS)
    allowed = {"version", "body_size", "first_layer", "read_file"}
    for kind in BROKEN_KINDS:
        assert EXPECTED_ERROR[kind] in allowed
        for seed in (0, 1, 2):
            assert maixpy_load_error(broken(kind, seed), (3, 4)) == EXPECTED_ERROR[kind], kind
    assert broken("truncated", 3) == broken("truncated", 3)
    with pytest.raises(ValueError, match="unknown broken kind 'nope'"):
        broken("nope")


def test_verdict_depends_on_the_builds_versions() -> None:
    v4 = build_v4(4096)
    assert maixpy_load_error(v4, (3, 4)) is None
    assert maixpy_load_error(v4, (3,)) == "version"
    assert maixpy_load_error(build_v3(4096), (3,)) is None
