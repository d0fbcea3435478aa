"""`hil models build|info|make` through hil.cli.main."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from hil.cli import main
from hil.commands.models import parse_size
from hil.kmodel import fixtures as fx
from hil.kmodel.build import broken, build_v3
from hil.kmodel.format import parse_kmodel


@pytest.mark.parametrize("text,want", [("4096", 4096), ("0x300000", 0x300000), ("300K", 300 * 1024),
                                       ("2M", 2 * 1024 * 1024), ("1.5M", 1536 * 1024),
                                       ("64KiB", 65536), ("2m", 2 * 1024 * 1024)])
def test_parse_size(text: str, want: int) -> None:
    assert parse_size(text) == want


@pytest.mark.parametrize("text", ["", "12Q", "-5", "1.3", "0xZZ", "M"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size(text)


def test_make_then_info(tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.kmodel"
    assert main(["models", "make", "--version", "3", "--size", "300K", "--main-mem", "0x20000",
                 "--seed", "4", "--kernel", "1", "-o", str(out)]) == 0
    assert out.read_bytes() == build_v3(300 * 1024, 0x20000, 4, 1)
    assert "307200 bytes" in capsys.readouterr().out
    assert main(["models", "info", str(out), "--layers"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["version"] == 3 and info["file_size"] == 307200 and info["main_mem"] == 0x20000
    assert info["maixpy_v3_v4"] == "load" and info["layers"][0]["name"] == "K210_CONV"
    assert info["layers"][0]["conv"]["kernel"] == 1


def test_make_v4_default_main_mem(tmp_path: Path, capsys) -> None:
    out = tmp_path / "v4.kmodel"
    assert main(["models", "make", "--version", "4", "--size", "2M", "-o", str(out)]) == 0
    info = parse_kmodel(out.read_bytes())
    assert info.version == 4 and info.file_size == 2 * 1024 * 1024 and info.main_mem == 65536


def test_make_too_small_is_one_line_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["models", "make", "--version", "3", "--size", "100", "-o",
                 str(tmp_path / "x.kmodel")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hil: ") and "at least 513 bytes" in err and err.count("\n") == 1
    assert not (tmp_path / "x.kmodel").exists()


def test_make_bad_size_is_a_usage_error(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["models", "make", "--version", "3", "--size", "lots", "-o", str(tmp_path / "x")])
    assert exc.value.code == 2 and "not a byte count" in capsys.readouterr().err


def test_info_bad_file_exits_2_with_one_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "cut.kmodel"
    bad.write_bytes(broken("truncated"))
    assert main(["models", "info", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and "file_size" in err
    assert main(["models", "info", str(tmp_path / "missing.kmodel")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_info_v5(capsys) -> None:
    assert main(["models", "info", str(fx.DEFAULT_DIR / "v5_conv_relu.kmodel")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["modules"] == ["stackvm", "k210"] and info["maixpy_v3_v4"] == "version"


def test_build_into_a_directory(tmp_path: Path, capsys) -> None:
    out = tmp_path / "models"
    assert main(["models", "build", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split()[:4] == ["name", "version", "size", "expect"]
    assert any(line.startswith("v3_small_3x3 ") and " load " in line for line in lines)
    assert any(line.startswith("broken_zero_layers ") and "body_size" in line for line in lines)
    built = fx.load_manifest(out)
    assert {f.name for f in built} <= {f.name for f in fx.load_manifest()}
    assert all(f.path.is_file() for f in built if f.committed)
    assert not (out / "cache").exists()            # large ones only on demand


def test_models_without_subcommand_prints_help(capsys) -> None:
    assert main(["models"]) == 2
