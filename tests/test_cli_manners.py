"""The `hil` command's manners and its bad inputs: --version; a subcommand's mistakes shown with its
own usage; one-line errors (a missing port included, no pyserial text, no traceback); files
written as the umask says (0644 by default); `hil models info` reads only what a header needs (a
FIFO, /dev/zero, a 2 GB sparse file: one line at once, bounded memory); rig values out of range
and TOML nested thousands deep are one line and exit 2 naming the file and key."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from hil import __version__
from hil.cli import main as hil_main

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "tests" / "data" / "records" / "history" / "2024-04-30T020000-sim" / "run.jsonl"


def hil(*argv: str, cwd: Path = ROOT, umask: int | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    def set_umask() -> None:
        if umask is not None:
            os.umask(umask)
    return subprocess.run([sys.executable, "-m", "hil", *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, preexec_fn=set_umask)


def one_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hil: "), done.stderr
    assert "Traceback" not in done.stderr and "Errno" not in done.stderr and "RecursionError" not in done.stderr
    return lines[0]


# -- manners ----------------------------------------------------------------------------------------
def test_version(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        hil_main(["--version"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"hil {__version__} (") and "Python " in out


@pytest.mark.parametrize(("argv", "usage", "error"), [
    (["flash", "--rig", "maixbit", "--adr", "0x300000", "m.kmodel"], "usage: hil flash ",
     "hil flash: error: unrecognized arguments: --adr"),
    (["rigs", "check", "sim", "--prboe"], "usage: hil rigs check ", "hil rigs check: error: unrecognized arguments: --prboe"),
    (["report", "html", "results"], "usage: hil report html ", "hil report html: error: the following arguments are required"),
    (["models", "make", "--version", "7", "--size", "1K", "-o", "x"], "usage: hil models make ",
     "hil models make: error: argument --version: invalid choice"),
    (["init", "--board", "maix-nano"], "usage: hil init ", "hil init: error: argument --board: invalid choice"),
])
def test_a_subcommand_mistake_shows_that_subcommands_usage(argv: list[str], usage: str, error: str,
                                                            capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        hil_main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage) and err.strip().splitlines()[-1].startswith(error), err


def test_missing_port_is_one_line_in_words(tmp_path: Path) -> None:
    image = tmp_path / "fw.bin"
    image.write_bytes(b"\0" * 4096)
    line = one_line(hil("flash", "--rig", "maixbit", "--port", "/dev/ttyUSB-none-9", str(image)))
    assert line == ("hil: cannot open ISP port /dev/ttyUSB-none-9: no such device (is the board plugged in? "
                    "see ls /dev/serial/by-id/)")
    line = one_line(hil("rigs", "check", "maixbit", "--probe", "--rig-dir", str(tmp_path), cwd=tmp_path))
    assert "/dev/ttyUSB0" in line and "no such device" in line


def test_an_unwritable_output_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = one_line(hil("report", "html", str(RECORD.parent.parent), "-o", str(blocker / "page.html")))
    assert str(blocker) in line


# -- file modes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_reports_and_pages_honour_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    out = tmp_path / "out"
    assert hil("report", "html", str(RECORD.parent.parent), "-o", str(out / "report.html"), umask=umask).returncode == 0
    assert hil("report", "compare", str(RECORD.parent), str(RECORD.parent), "--markdown-out", str(out / "c.md"),
               "--json-out", str(out / "c.json"), umask=umask).returncode in (0, 1)
    assert hil("models", "make", "--version", "3", "--size", "4K", "-o", str(out / "m.kmodel"),
               umask=umask).returncode == 0
    assert hil("init", str(out / "project"), umask=umask).returncode == 0
    files = [out / "report.html", out / "c.md", out / "c.json", out / "m.kmodel", out / "project" / "pytest.ini",
             out / "project" / "rigs" / "desk.toml"]
    assert {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {f.name: oct(mode) for f in files}
    assert not list(out.rglob("*.part")), "a temporary file was left behind"


# -- bad inputs to commands --------------------------------------------------------------------------
def test_models_info_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "model.kmodel"
    os.mkfifo(fifo)                       # nobody writes: opening it to read would block forever
    assert one_line(hil("models", "info", str(fifo), timeout=30)) == f"hil: {fifo}: a FIFO, not a regular file"
    assert one_line(hil("models", "info", "/dev/zero", timeout=30)) == \
        "hil: /dev/zero: a character device, not a regular file"
    assert one_line(hil("models", "info", str(tmp_path))) == f"hil: {tmp_path}: a directory, not a regular file"


def test_models_info_on_a_2gb_sparse_file_reads_only_its_head(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    big = tmp_path / "big.kmodel"
    with open(big, "wb") as f:
        f.write((3).to_bytes(4, "little") + bytes(8))     # a v3 header's first words, then nothing
        f.truncate(2 * 1024 ** 3)
    tracemalloc.start()
    try:
        assert hil_main(["models", "info", str(big)]) == 2
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err.strip()
    assert err == (f"hil: {big}: 2147483648 bytes, more than any kmodel a K210 can load (16777216 bytes at "
                   "most, its whole flash); the header says kmodel v3")
    assert peak < 4 * 1024 * 1024, f"{peak} bytes allocated to say so"


def test_flash_refuses_a_fifo_and_dev_zero(tmp_path: Path) -> None:
    fifo = tmp_path / "fw.bin"
    os.mkfifo(fifo)
    assert one_line(hil("flash", "--rig", "maixbit", str(fifo), timeout=30)) == f"hil: {fifo}: a FIFO, not a regular file"
    assert one_line(hil("flash", "--rig", "maixbit", "/dev/zero", timeout=30)).startswith("hil: /dev/zero: a character device")


BAD_RIGS = ROOT / "tests" / "data" / "rigs_bad"


@pytest.mark.parametrize("name", ["baud_huge_integer", "baud_1e23", "boot_timeout_nan", "boot_timeout_inf",
                                  "command_timeout_inf", "nested_thousands_deep", "nested_tables_deep"])
def test_rigs_check_refuses_out_of_range_values_and_deep_nesting(name: str) -> None:
    path = BAD_RIGS / f"{name}.toml"
    want = path.read_text().splitlines()[0][len("# expect: "):]
    line = one_line(hil("rigs", "check", str(path.relative_to(ROOT))))
    assert line.startswith(f"hil: tests/data/rigs_bad/{name}.toml: ") and want in line, line


def test_deep_nesting_anywhere_a_toml_is_read(tmp_path: Path) -> None:
    deep = "x = " + "[" * 4000 + "]" * 4000 + "\n"
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\n" + deep)
    assert one_line(hil("rigs", "list", cwd=tmp_path)) == \
        f"hil: {tmp_path / 'pyproject.toml'}: invalid TOML: nested too deeply"
    (tmp_path / "pyproject.toml").unlink()
    (tmp_path / "rigs" / "firmware").mkdir(parents=True)
    rig = (ROOT / "rigs" / "maixbit.toml").read_text().replace('"maixpy-v0.6.2-full"', '"deep"')
    (tmp_path / "rigs" / "maixbit.toml").write_text(rig)
    (tmp_path / "rigs" / "firmware" / "deep.toml").write_text('[profile]\nname = "deep"\n' + deep)
    line = one_line(hil("rigs", "check", "maixbit", cwd=tmp_path))
    assert line.endswith("firmware.profile: " + f"{tmp_path / 'rigs' / 'firmware' / 'deep.toml'}: invalid TOML: "
                         "nested too deeply"), line
    (tmp_path / "rigs" / "pools").mkdir()
    (tmp_path / "rigs" / "pools" / "p.toml").write_text('[pool]\nname = "p"\n' + deep)
    done = subprocess.run([sys.executable, "-m", "pytest", "--rig-pool=p", "-p", "no:cacheprovider"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 4 and "p.toml: invalid TOML: nested too deeply" in done.stderr, done.stderr
    assert "RecursionError" not in done.stdout + done.stderr


def test_an_unreadable_model_is_one_line(tmp_path: Path) -> None:
    """(Skipped as root, who reads everything.)"""
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    path = tmp_path / "m.kmodel"
    path.write_bytes(b"\0" * 64)
    path.chmod(0)
    assert one_line(hil("models", "info", str(path))) == f"hil: {path}: cannot read: Permission denied"
