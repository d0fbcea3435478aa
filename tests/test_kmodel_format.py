"""hil.kmodel.format: v3/v4/v5 parsing, the loaders' checks, sizes read from a flash header."""
from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import pytest

from hil.errors import KModelFormatError
from hil.kmodel.build import BROKEN_KINDS, PARSES_OK, broken, build_v3, build_v4, build_v5_stub
from hil.kmodel.format import (KModelInfo, check_loadable, header_bytes_needed, loader_error_key,
                               model_size_from_header, parse_kmodel, sniff_version)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "models"


def iris_like() -> bytes:
    """The header of nncase 0.1's iris.kmodel sample (facts §2.1): 436 bytes, header math 440."""
    head = struct.pack("<7I", 3, 1, 0, 2, 0x8000, 0x38, 1) + struct.pack("<II", 0x30, 12)
    layers = struct.pack("<IIII", 0x12, 200, 0x12, 188)
    body = bytes(436 - len(head) - len(layers))
    return head + layers + body


def test_iris_sample_header_parses_with_seek_padding_slack() -> None:
    info = parse_kmodel(iris_like(), "iris.kmodel")
    assert (info.version, info.file_size, info.model_size) == (3, 436, 440)
    assert info.layer_types == (0x12, 0x12) and info.main_mem == 0x38 and info.outputs == 1
    assert info.first_layer_is_conv is False          # a flag, not a parse error
    with pytest.raises(KModelFormatError) as exc:
        check_loadable(info, "iris.kmodel")
    assert loader_error_key(exc.value) == "first_layer" and "iris.kmodel" in str(exc.value)


def test_v3_more_than_seven_bytes_short_is_read_file() -> None:
    data = iris_like()[:432]                          # 8 bytes short of 440
    with pytest.raises(KModelFormatError) as exc:
        parse_kmodel(data, "cut.kmodel")
    assert loader_error_key(exc.value) == "read_file"
    assert exc.value.source == "cut.kmodel" and exc.value.field == "file_size"


def test_info_is_frozen_and_serialisable() -> None:
    info = parse_kmodel(build_v3(4096))
    assert isinstance(info, KModelInfo)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.version = 4  # type: ignore[misc]
    d = info.as_dict()
    assert d["version"] == 3 and isinstance(d["layer_types"], list)


@pytest.mark.parametrize("head,want", [
    (b"", None), (b"\x03\x00\x00\x00" * 2, None),
    (struct.pack("<3I", 3, 1, 0), 3), (struct.pack("<3I", 3, 1, 1), None),
    (b"LDMK" + struct.pack("<2I", 4, 0), 4), (b"LDMK" + struct.pack("<2I", 5, 32), 5),
    (b"LDMK" + struct.pack("<2I", 6, 0), None), (b"KMDL" + struct.pack("<2I", 4, 0), None),
    (b"\xff" * 64, None),
])
def test_sniff_version(head: bytes, want: int | None) -> None:
    assert sniff_version(head) == want


def test_v4_fields() -> None:
    data = build_v4(16384, main_mem=100_000, seed=3)
    info = parse_kmodel(data)
    assert (info.version, info.target, info.arch, info.main_mem) == (4, 1, None, 100_000)
    assert info.layer_types[0] == 0x2001 and 0x2002 in info.layer_types
    assert info.inputs == 1 and info.outputs == 2 and info.first_layer_is_conv


@pytest.mark.parametrize("name", ["v5_conv_relu", "v5_classifier"])
def test_nncase_v5_fixtures_parse(name: str) -> None:
    data = (FIXTURES / f"{name}.kmodel").read_bytes()
    info = parse_kmodel(data, name)
    assert info.version == 5 and info.modules == ("stackvm", "k210")
    assert info.model_size == info.file_size == len(data)
    assert info.layer_count >= 2 and info.main_mem > 0 and info.inputs == 1 and info.outputs == 1
    assert info.layer_types == () and info.first_layer_is_conv


def test_v5_truncated_and_stub() -> None:
    stub = build_v5_stub(2)
    assert parse_kmodel(stub).modules == ("stackvm", "k210")
    for cut in (31, 40, len(stub) - 1):
        with pytest.raises(KModelFormatError):
            parse_kmodel(stub[:cut])


@pytest.mark.parametrize("kind", BROKEN_KINDS)
def test_every_broken_kind_is_an_error_or_a_flag(kind: str) -> None:
    data = broken(kind, seed=5)
    if kind in PARSES_OK:
        info = parse_kmodel(data, kind)
        assert info.version == 5 or not info.first_layer_is_conv
    else:
        with pytest.raises(KModelFormatError) as exc:
            parse_kmodel(data, f"{kind}.kmodel")
        assert str(exc.value).startswith(f"{kind}.kmodel: offset ")
        assert "\n" not in str(exc.value)


def test_huge_counts_fail_fast_without_allocating() -> None:
    base = build_v3(4096)
    for off in (12, 24):                               # layers_length, output_count
        data = bytearray(base)
        struct.pack_into("<I", data, off, 0xFFFFFFFF)
        with pytest.raises(KModelFormatError) as exc:
            parse_kmodel(bytes(data))
        assert "only" in exc.value.problem
    v4 = bytearray(build_v4(4096))
    for off in (16, 24, 28, 32):                       # constants, nodes, inputs, outputs
        data = bytearray(v4)
        struct.pack_into("<I", data, off, 0xFFFFFFFF)
        with pytest.raises(KModelFormatError):
            parse_kmodel(bytes(data))


@pytest.mark.parametrize("maker,size", [(build_v3, 513), (build_v3, 300_001), (build_v4, 769),
                                        (build_v4, 200_003)])
def test_model_size_from_a_flash_header(maker, size: int) -> None:
    data = maker(size, seed=1)
    flash = data + b"\xff" * 8192                     # what follows a model in erased flash
    head = flash[:16]
    while header_bytes_needed(head) > len(head):
        head = flash[:header_bytes_needed(head)]
    assert len(head) < 1024
    total = model_size_from_header(head)
    assert total == parse_kmodel(data).model_size and 0 <= total - size <= 7


def test_model_size_from_a_v5_header_walks_modules() -> None:
    data = (FIXTURES / "v5_classifier.kmodel").read_bytes()
    head = data[:16]
    while header_bytes_needed(head) > len(head):
        head = data[:header_bytes_needed(head)]
    assert len(head) < len(data)
    assert model_size_from_header(head) == len(data)


def test_model_size_from_header_rejects_non_models_and_bad_bodies() -> None:
    with pytest.raises(KModelFormatError):
        model_size_from_header(b"\xff" * 4096)
    with pytest.raises(KModelFormatError) as exc:
        model_size_from_header(broken("body_size_negative"))
    assert loader_error_key(exc.value) == "body_size"
    with pytest.raises(KModelFormatError):                 # tables cut short
        model_size_from_header(build_v3(100_000)[:30])


def test_memoryview_and_bytearray_inputs() -> None:
    data = build_v3(5000)
    assert parse_kmodel(memoryview(data)) == parse_kmodel(bytearray(data)) == parse_kmodel(data)
