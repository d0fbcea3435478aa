"""Bad-input corpora: every file gives one clear line naming what is wrong, never a traceback.

Through the API and through the CLI entry points (``hil.cli.main`` in-process, which is what the
``hil`` script runs, plus a few real subprocesses):
- tests/data/rigs_bad/          malformed rig files       -> ``hil rigs check FILE``
- tests/data/profiles_bad/      malformed firmware profiles -> parse_profile
- tests/data/records/bad/       broken run records        -> ``hil report compare GOOD BAD``
- tests/data/kmodels_bad/ and every hil.kmodel.build.broken kind -> parse_kmodel, ``hil models info FILE``
- tests/data/isp_replies_bad/   what a board may answer to an ISP flash write -> IspSession
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hil import cli
from hil.errors import FirmwareProfileError, IspError, KModelFormatError, RigConfigError

DATA = Path(__file__).resolve().parent / "data"
ROOT = DATA.parent.parent
GOOD_RECORD = DATA / "records" / "history" / "2024-04-29T020000-sim" / "run.jsonl"


def expected(folder: Path) -> dict[str, str]:
    return json.loads((folder / "EXPECTED.json").read_text())


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    """The one error line; "k210sim: " when hil sim launched the simulator, which said it."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(("hil: ", "k210sim: ")), err
    return lines[0]


# -- rigs --------------------------------------------------------------------------------------------
RIGS_BAD = sorted((DATA / "rigs_bad").glob("*.toml"))


@pytest.mark.parametrize("path", RIGS_BAD, ids=lambda p: p.stem)
def test_hil_rigs_check_bad_rig(capsys, path: Path) -> None:
    code, out, err = run_cli(capsys, "rigs", "check", str(path))
    assert code == 2 and out == ""
    assert str(path) in one_line_error(err)


def test_rig_corpus_is_not_empty() -> None:
    assert len(RIGS_BAD) >= 20


# -- firmware profiles ----------------------------------------------------------------------------------
PROFILES_BAD = sorted((DATA / "profiles_bad").glob("*.toml"))


@pytest.mark.parametrize("path", PROFILES_BAD, ids=lambda p: p.stem)
def test_bad_profile(path: Path) -> None:
    from hil.firmware import parse_profile
    with pytest.raises(FirmwareProfileError) as info:
        parse_profile(path)
    text = str(info.value)
    assert "\n" not in text and str(path) in text
    assert expected(path.parent)[path.name] in text, text


def test_the_simulator_never_reads_a_profile(tmp_path: Path) -> None:
    """hil sim serve takes a build name; a profile file is not one (profiles are the suites')."""
    done = subprocess.run([sys.executable, "-m", "hil", "sim", "serve", "--state", str(tmp_path / "s"),
                           "--build", "tests/data/profiles_bad/band_reversed.toml", "--pace", "off"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown firmware build 'tests/data/profiles_bad/band_reversed.toml'" in one_line_error(done.stderr)
    assert not (tmp_path / "s" / "control.sock").exists()


# -- run records ---------------------------------------------------------------------------------------
RECORDS_BAD = sorted((DATA / "records" / "bad").glob("*.jsonl"))


@pytest.mark.parametrize("path", RECORDS_BAD, ids=lambda p: p.stem)
def test_hil_report_compare_bad_record(capsys, path: Path) -> None:
    code, out, err = run_cli(capsys, "report", "compare", str(GOOD_RECORD), str(path))
    assert code == 2 and out == ""
    line = one_line_error(err)
    assert str(path) in line and expected(path.parent)[path.name] in line, line


def test_hil_report_compare_missing_and_directory_without_runs(capsys, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "report", "compare", str(GOOD_RECORD), str(tmp_path / "nope.jsonl"))
    assert code == 2 and "no such run" in one_line_error(err)
    code, _, err = run_cli(capsys, "report", "compare", str(GOOD_RECORD), str(tmp_path))
    assert code == 2
    one_line_error(err)


# -- kmodels ---------------------------------------------------------------------------------------------
KMODELS_BAD = sorted((DATA / "kmodels_bad").glob("*.kmodel"))


def _broken_kinds() -> list[str]:
    from hil.kmodel.build import BROKEN_KINDS
    return list(BROKEN_KINDS)


@pytest.mark.parametrize("path", KMODELS_BAD, ids=lambda p: p.stem)
def test_hand_made_bad_kmodel(capsys, path: Path) -> None:
    from hil.kmodel.format import parse_kmodel
    with pytest.raises(KModelFormatError) as info:
        parse_kmodel(path.read_bytes(), str(path))
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{path}: offset 0x")
    assert expected(path.parent)[path.name] in text, text
    code, out, err = run_cli(capsys, "models", "info", str(path))
    assert code == 2 and out == ""
    assert one_line_error(err) == f"hil: {text}"


@pytest.mark.parametrize("kind", _broken_kinds())
def test_broken_kind_through_hil_models_info(capsys, tmp_path: Path, kind: str) -> None:
    from hil.kmodel.build import PARSES_OK, broken
    path = tmp_path / f"{kind}.kmodel"
    path.write_bytes(broken(kind))
    code, out, err = run_cli(capsys, "models", "info", str(path))
    if kind in PARSES_OK:        # a well-formed header MaixPy refuses for another reason
        assert code == 0 and err == ""
        info = json.loads(out)
        assert info["maixpy_v3_v4"] != "load"
    else:
        assert code == 2 and out == ""
        assert one_line_error(err).startswith(f"hil: {path}: offset 0x")


def test_hil_models_info_unreadable(capsys, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "models", "info", str(tmp_path / "absent.kmodel"))
    assert code == 2 and "cannot read" in one_line_error(err)
    code, _, err = run_cli(capsys, "models", "info", str(tmp_path))
    assert code == 2
    one_line_error(err)


# -- ISP replies ----------------------------------------------------------------------------------------
REPLIES_BAD = sorted((DATA / "isp_replies_bad").glob("*.hex"))


def read_hex(path: Path) -> bytes:
    words = [w for line in path.read_text().splitlines() if not line.startswith("#") for w in line.split()]
    return bytes(int(w, 16) for w in words)


class ReplyingPort:
    """A serial port whose board answers every request with the same bytes."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.pending = bytearray()
        self.baudrate = 115200
        self.timeout = 0.01
        self.writes = 0

    def write(self, data: bytes) -> int:
        self.writes += 1
        self.pending += self.reply
        return len(data)

    def read(self, n: int = 1) -> bytes:
        if not self.pending:
            time.sleep(self.timeout)
            return b""
        out = bytes(self.pending[:n])
        del self.pending[:n]
        return out

    @property
    def in_waiting(self) -> int:
        return len(self.pending)

    def reset_input_buffer(self) -> None:
        self.pending.clear()


@pytest.mark.parametrize("path", REPLIES_BAD, ids=lambda p: p.stem)
def test_isp_reply_corpus(path: Path) -> None:
    from hil.boards import get_board
    from hil.isp.loader import IspSession, Retries, Timeouts
    from hil.isp.packets import parse_reply
    from hil.isp.slip import SlipDecoder
    reply = read_hex(path)
    for frame in SlipDecoder().feed(reply):          # the parsers never raise on any of it
        parse_reply(frame.payload)
    port = ReplyingPort(reply)
    session = IspSession(port, get_board("maix-bit"), name="fake0",
                         timeouts=Timeouts(reply=0.05, write_extra=0.05, busy_budget=0.3),
                         retries=Retries(flash_write=3))
    want = expected(path.parent)[path.name]
    t0 = time.monotonic()
    if want == "ok":
        session.flash_write(0x300000, b"\x5a" * 1000)
        return
    with pytest.raises(IspError) as info:
        session.flash_write(0x300000, b"\x5a" * 1000)
    assert time.monotonic() - t0 < 5
    text = str(info.value)
    assert "\n" not in text and text.startswith("ISP flash write on fake0 (maix-bit): FLASH_WRITE 0xd4 at 0x00300000")
    assert want in text, text


# -- the real entry point, a few times --------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["rigs", "check", "tests/data/rigs_bad/unknown_board.toml"],
    ["models", "info", "tests/data/kmodels_bad/text.kmodel"],
    ["report", "compare", str(GOOD_RECORD.relative_to(ROOT)), "tests/data/records/bad/garbage_line.jsonl"],
    ["sim", "serve", "--state", "/nonexistent-hil-test/state", "--build", "no-such-build"],
], ids=["rigs-check", "models-info", "report-compare", "sim-serve"])
def test_hil_command_exits_2_with_one_line(argv: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "hil", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    one_line_error(done.stderr)


def test_rig_errors_are_rig_config_errors() -> None:
    from hil.rig import parse_rig
    for path in RIGS_BAD:
        with pytest.raises(RigConfigError):
            parse_rig(path)
