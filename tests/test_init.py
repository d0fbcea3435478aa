"""`hil init [DIR]`: the files a firmware team starts from; its rig loads, nothing is overwritten,
and bad options are one line. (Running pytest there, installed: tests/test_wheel.py.)"""
from __future__ import annotations

from pathlib import Path

import pytest

from hil.cli import main as hil_main
from hil.rig import load_rig
from hil.rigdirs import project_config

FILES = ["pytest.ini", "conftest.py", "rigs/desk.toml", "rigs/firmware/README.md", "suites/test_our_model.py",
         "ci/hil-nightly.yml", ".gitignore"]


def test_init_writes_a_project_whose_rig_loads(tmp_path: Path, capsys: pytest.CaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "fw"
    assert hil_main(["init", str(project), "--board", "maix-go"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"hil init: a HIL project in {project}:")
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()) == sorted(FILES)
    rig = load_rig(project / "rigs" / "desk.toml")
    assert rig.board.name == "maix-go" and rig.serial.port == "/dev/ttyUSB1" and rig.power.driver == "dtr-rts"
    assert rig.profile.name == "maixpy-v0.6.2-full"
    assert "Wiring: DTR drives RESET, RTS drives BOOT (kflash -B goE)" in (project / "rigs" / "desk.toml").read_text()
    assert project_config(project / "suites") == (project / "pytest.ini", "rigs")
    ini = (project / "pytest.ini").read_text()
    assert "testpaths = suites hil.suites" in ini and "addopts = --pyargs" in ini
    nightly = (project / "ci" / "hil-nightly.yml").read_text()
    assert "hil nightly --rig sim --rig desk --results results" in nightly and "${{ github.run_id }}" in nightly
    monkeypatch.chdir(project)
    assert hil_main(["rigs", "check", "desk"]) == 0          # found through pytest.ini's hil_rig_dir
    assert "rig desk: ok: Sipeed Maix Go on /dev/ttyUSB1" in capsys.readouterr().out


def test_init_overwrites_nothing_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n# ours\n")
    assert hil_main(["init", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"hil: {tmp_path / 'pytest.ini'} already exists; nothing written (--force overwrites)\n"
    assert not (tmp_path / "rigs").exists() and "# ours" in (tmp_path / "pytest.ini").read_text()
    assert hil_main(["init", str(tmp_path), "--force", "--rig", "bench-3"]) == 0
    assert (tmp_path / "rigs" / "bench-3.toml").is_file() and "hil_rig_dir" in (tmp_path / "pytest.ini").read_text()


@pytest.mark.parametrize(("argv", "error"), [
    (["--rig", "../x"], "--rig '../x': a rig name is letters, digits, '-', '_' and '.'"),
    (["--profile", "no-such-build"], "firmware profile 'no-such-build' not found"),
])
def test_init_bad_options_are_one_line(tmp_path: Path, argv: list[str], error: str,
                                       capsys: pytest.CaptureFixture) -> None:
    assert hil_main(["init", str(tmp_path / "p"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and error in err, err
    assert not (tmp_path / "p").exists()


def test_init_into_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "f").write_text("")
    assert hil_main(["init", str(tmp_path / "f")]) == 2
    assert capsys.readouterr().err == f"hil: {tmp_path / 'f'} exists and is not a directory\n"
