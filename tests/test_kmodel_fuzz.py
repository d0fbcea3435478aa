"""Fuzz the kmodel parser: random bytes and mutated valid models give KModelFormatError or a
KModelInfo, never another exception, a hang or a huge allocation."""
from __future__ import annotations

import struct
import tracemalloc
from datetime import timedelta
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from hil.errors import KModelFormatError  # noqa: E402
from hil.kmodel.build import build_v3, build_v4, build_v5_stub  # noqa: E402
from hil.kmodel.describe import describe  # noqa: E402
from hil.kmodel.format import (KModelInfo, header_bytes_needed, model_size_from_header,  # noqa: E402
                               parse_kmodel)
from hil.kmodel.verdict import maixpy_load_error  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "models"
BASES = [build_v3(600, 65536, 1), build_v3(3000, 65536, 2), build_v3(20_000, 65536, 3, 3),
         build_v4(800, 65536, 1), build_v4(6000, 65536, 2), build_v5_stub(1),
         (FIXTURES / "v5_conv_relu.kmodel").read_bytes()]
HUGE = [0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 0x10000000, 0xFFFF, 0]
FUZZ = settings(max_examples=500, deadline=timedelta(milliseconds=400), derandomize=True,
                database=None,
                suppress_health_check=[HealthCheck.too_slow])
PEAK_LIMIT = 16 * 1024 * 1024        # no input here is over 30 KB; any big allocation is a bug


def exercise(data: bytes) -> None:
    tracemalloc.start()
    try:
        try:
            info = parse_kmodel(data, "fuzz")
        except KModelFormatError:
            info = None
        if info is not None:
            assert isinstance(info, KModelInfo) and info.file_size == len(data)
            try:
                describe(data, "fuzz")
            except KModelFormatError:
                pass
        for fn in (model_size_from_header, header_bytes_needed):
            try:
                assert fn(data, "fuzz") >= 0
            except KModelFormatError:
                pass
        assert maixpy_load_error(data) in (None, "version", "body_size", "first_layer", "read_file")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"peak allocation {peak} bytes"


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    exercise(data)


@FUZZ
@given(st.sampled_from(range(len(BASES))), st.sampled_from([b"\x03\x00\x00\x00", b"LDMK"]),
       st.binary(max_size=600))
def test_random_bytes_behind_a_real_identifier(base: int, ident: bytes, tail: bytes) -> None:
    version = BASES[base][4:8] if ident == b"LDMK" else b""
    exercise(ident + version + tail)


@FUZZ
@given(st.sampled_from(range(len(BASES))),
       st.lists(st.tuples(st.integers(0, 40_000), st.integers(0, 7)), max_size=8),
       st.integers(0, 40_000))
def test_bit_flips_and_truncation(base: int, flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(BASES[base])
    for pos, bit in flips:
        data[pos % len(data)] ^= 1 << bit
    exercise(bytes(data[:cut]))
    exercise(bytes(data))


@FUZZ
@given(st.sampled_from(range(len(BASES))), st.integers(0, 127), st.sampled_from(HUGE),
       st.integers(0, 0xFFFFFFFF))
def test_count_fields_set_huge(base: int, word: int, huge: int, other: int) -> None:
    data = bytearray(BASES[base])
    off = (4 * word) % (len(data) - 3)
    off -= off % 4
    struct.pack_into("<I", data, off, huge)
    exercise(bytes(data))
    struct.pack_into("<I", data, off, other)
    exercise(bytes(data))
