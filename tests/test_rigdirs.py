"""The lookup order of rigs, profiles and pools (hil.rigdirs): the project's (--rig-dir, else
hil_rig_dir in its pytest configuration, then ./rigs), $HIL_RIG_DIR, then the shipped ones; the
same seen by the hil commands and by a pytest run."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hil.cli import main as hil_main
from hil.errors import ConfigError, RigConfigError
from hil.farm.pool import load_pool
from hil.firmware import load_profile
from hil.resources import shipped
from hil.rig import load_rig, rig_path
from hil.rigdirs import RigSearch, project_config

SHIPPED = shipped("rigs")


def rig_text(name: str, description: str, profile: str = "maixpy-v0.6.2-full") -> str:
    text = (SHIPPED / "sim.toml").read_text()
    text = text.replace('name = "sim"', f'name = "{name}"')
    text = text.replace('description = "Simulated Maix Bit, MaixPy v0.6.2 full build, SD card fitted"',
                        f'description = "{description}"')
    return text.replace('profile = "maixpy-v0.6.2-full"', f'profile = "{profile}"')


def put_rig(folder: Path, name: str, description: str, profile: str = "maixpy-v0.6.2-full") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(rig_text(name, description, profile))
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.delenv("HIL_RIG_DIR", raising=False)
    return root


def test_project_then_env_then_shipped(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / "env-rigs"
    put_rig(env, "sim", "from the environment")
    put_rig(env, "envonly", "only in the environment")
    monkeypatch.setenv("HIL_RIG_DIR", str(env))
    assert load_rig("sim").description == "from the environment"           # $HIL_RIG_DIR over shipped
    put_rig(project / "rigs", "sim", "from ./rigs")
    assert load_rig("sim").description == "from ./rigs"                    # ./rigs over $HIL_RIG_DIR
    (project / "pytest.ini").write_text("[pytest]\nhil_rig_dir = lab/rigs\n")
    put_rig(project / "lab" / "rigs", "sim", "from hil_rig_dir")
    assert load_rig("sim").description == "from hil_rig_dir"               # the ini's dir first
    assert load_rig("envonly").description == "only in the environment"
    assert rig_path("maixbit") == SHIPPED / "maixbit.toml"                 # the rest is shipped
    sources = [d.source for d in RigSearch.default().dirs]
    assert sources == ["pytest.ini hil_rig_dir", "./rigs", "$HIL_RIG_DIR", "shipped with k210-hil"]
    # --rig-dir stands in for the project's directories, the rest of the order stays
    other = put_rig(tmp_path / "other", "sim", "from --rig-dir").parent
    assert load_rig("sim", other).description == "from --rig-dir"
    assert load_rig("envonly", other).description == "only in the environment"


def test_the_ini_is_the_one_pytest_would_pick(project: Path) -> None:
    sub = project / "a" / "b"
    sub.mkdir(parents=True)
    (project / "pyproject.toml").write_text('[tool.pytest.ini_options]\nhil_rig_dir = "hw/rigs"\n')
    assert project_config(sub) == (project / "pyproject.toml", "hw/rigs")
    (project / "a" / "pyproject.toml").write_text('[project]\nname = "x"\n')   # no pytest table: skipped
    assert project_config(sub) == (project / "pyproject.toml", "hw/rigs")
    (project / "a" / "tox.ini").write_text("[pytest]\nhil_rig_dir = t\n")
    assert project_config(sub) == (project / "a" / "tox.ini", "t")
    (project / "a" / "pytest.ini").write_text("")                             # pytest.ini wins, even empty
    assert project_config(sub) == (project / "a" / "pytest.ini", "")
    (project / "a" / "pytest.ini").write_text("[pytest]\nhil_rig_dir = 1\n[pytest\n")
    with pytest.raises(ConfigError, match=r"pytest.ini: unreadable: "):
        project_config(sub)


def test_profiles_beside_the_rig_first_then_in_order(project: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    full = (SHIPPED / "firmware" / "maixpy-v0.6.2-full.toml").read_text()
    ours = full.replace('name = "maixpy-v0.6.2-full"', 'name = "our-build"')
    env = tmp_path / "env"
    (env / "firmware").mkdir(parents=True)
    (env / "firmware" / "our-build.toml").write_text(ours.replace("v0.6.2-75-g973361c0d", "v9-env"))
    monkeypatch.setenv("HIL_RIG_DIR", str(env))
    put_rig(project / "rigs", "desk", "ours", profile="our-build")
    assert load_rig("desk").profile.version == "v9-env"                    # found in $HIL_RIG_DIR
    (project / "rigs" / "firmware").mkdir()
    (project / "rigs" / "firmware" / "our-build.toml").write_text(ours.replace("v0.6.2-75-g973361c0d", "v9-ours"))
    assert load_rig("desk").profile.version == "v9-ours"                   # beside the rig wins
    assert load_profile("our-build").version == "v9-ours"
    with pytest.raises(RigConfigError, match=r"firmware.profile: firmware profile 'nope' not found in "
                                             r".*rigs/firmware, .*env/firmware, .*\(known: .*our-build"):
        load_rig(put_rig(project / "rigs", "bad", "x", profile="nope"))


def test_pools_in_order(project: Path) -> None:
    assert [r.name for r in load_pool("sim4").rigs] == ["farm-sim-a", "farm-sim-b", "farm-sim-c", "farm-sim-d"]
    (project / "rigs" / "pools").mkdir(parents=True)
    (project / "rigs" / "pools" / "sim4.toml").write_text('[pool]\nname = "sim4"\nrigs = ["sim"]\n')
    assert [r.name for r in load_pool("sim4").rigs] == ["sim"]


def test_hil_rigs_list_says_where_each_rig_comes_from(project: Path, capsys: pytest.CaptureFixture) -> None:
    (project / "pytest.ini").write_text("[pytest]\nhil_rig_dir = rigs\n")
    put_rig(project / "rigs", "desk", "ours")
    assert hil_main(["rigs", "list"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert "pytest.ini hil_rig_dir" in lines["desk"] and "shipped" in lines["sim"]
    assert out.startswith(f"rigs from: pytest.ini hil_rig_dir ({project / 'rigs'}); ")
    assert hil_main(["rigs", "profiles", "maixpy-v0.6.2-full"]) == 0
    assert capsys.readouterr().out.strip() == str(SHIPPED / "firmware" / "maixpy-v0.6.2-full.toml")
    assert hil_main(["rigs", "profiles", "nope"]) == 2
    assert "firmware profile 'nope' not found" in capsys.readouterr().err


def test_a_pytest_run_uses_its_own_ini_file(project: Path) -> None:
    """pytest's ini file (here one level up, found from a subdirectory) names the rig dir."""
    (project / "pytest.ini").write_text("[pytest]\nhil_rig_dir = lab\n")
    put_rig(project / "lab", "benchy", "from the ini")
    (project / "work").mkdir()
    (project / "work" / "test_it.py").write_text("def test_it(rig):\n    assert rig.description == 'from the ini'\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "--rig=benchy", "test_it.py", "-q",
                           "-p", "no:cacheprovider"],
                          cwd=project / "work", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
