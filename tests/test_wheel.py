"""Installed, it works anywhere: the wheel is built, installed into a fresh venv (its dependencies
from the package index or pip's cache, never from this checkout), and from an empty directory
``hil init`` writes a project where ``pytest --rig sim`` and ``hil nightly --rig sim`` pass,
running the shipped suites and the project's own example suite, with no checkout on the path.

Also: every tracked file of hil/, k210sim/, suites/, rigs/, fixtures/models/ and agent/ is in the
wheel at its mapped place, and nothing else is (no tests/, no top-level ``suites``).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from hil import __version__

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
# checkout folder -> where setup.py puts it in the wheel
MAPPED = {"suites/": "hil/suites/", "rigs/": "hil/rigs/", "fixtures/models/": "hil/fixtures/models/",
          "agent/": "hil/agent/sources/"}
SHIPPED = ("hil/", "k210sim/", "suites/", "rigs/", "fixtures/models/", "agent/")
NOT_SHIPPED = ("fixtures/models/cache/",)
pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("git") is None, reason="needs git")]


def tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", "--", *SHIPPED], cwd=ROOT, capture_output=True, check=True)
    return sorted(p for p in out.stdout.decode().split("\0")
                  if p and not p.startswith(NOT_SHIPPED) and (ROOT / p).is_file())


def in_wheel(path: str) -> str:
    for src, dst in MAPPED.items():
        if path.startswith(src):
            return dst + path[len(src):]
    return path


def extras() -> list[str]:
    """Extras the wheel test installs: the simulator's (k210-hil[sim]) once pyproject has it."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [e for e in ("sim",) if e in data["project"].get("optional-dependencies", {})]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the tracked files (the checkout gets no build/ or egg-info)."""
    src = tmp_path_factory.mktemp("src")
    for path in tracked() + ["setup.py", "pyproject.toml", "README.md"]:
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, src / path)
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (found,) = out.glob("k210_hil-*.whl")
    return found


def test_the_wheel_carries_every_shipped_file_at_its_place(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [p for p in tracked() if in_wheel(p) not in names]
    assert not missing, f"tracked files the wheel leaves behind: {missing}"
    foreign = sorted(n for n in names if not n.startswith(("hil/", "k210sim/", "k210_hil-")))
    assert not foreign, f"files outside the hil (and k210sim) packages: {foreign}"
    assert "hil/suites/__init__.py" in names and "hil/rigs/sim.toml" in names
    assert "hil/rigs/firmware/maixpy-v0.6.2-full.toml" in names and "hil/fixtures/models/manifest.toml" in names
    assert not any("/cache/" in n or n.endswith(".pyc") for n in names)
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "hil = hil.cli:main" in meta and "hil.plugin = hil.plugin" in meta


def test_the_suites_import_each_other_relatively() -> None:
    """Installed, the suites are hil.suites: ``import kpu_support`` would only work from a checkout."""
    import ast
    siblings = {p.stem for p in (ROOT / "suites").glob("*.py")}
    absolute = [f"{p.name}:{node.lineno}" for p in sorted((ROOT / "suites").glob("*.py"))
                for node in ast.walk(ast.parse(p.read_text()))
                if (isinstance(node, ast.Import) and any(a.name.split(".")[0] in siblings for a in node.names))
                or (isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] in siblings)]
    assert not absolute, f"write these as `from . import ...`: {absolute}"


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_installed_from_an_empty_directory_init_pytest_and_nightly_pass(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    bin_ = venv / "bin"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "HIL_", "VIRTUAL_ENV", "PYTEST_", "COV_")) and k != "PATH"}
    env.update(PATH=f"{bin_}{os.pathsep}/usr/bin:/bin", PYTHONNOUSERSITE="1", VIRTUAL_ENV=str(venv),
               HIL_CACHE_DIR=str(tmp_path / "cache"), HIL_LOCK_DIR=str(tmp_path / "locks"))
    spec = f"{wheel}[{','.join(extras())}]" if extras() else str(wheel)
    proc = run([str(bin_ / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", spec],
               tmp_path, env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    installed_s = time.monotonic() - t0

    home = tmp_path / "empty"
    home.mkdir()
    where = run([str(bin_ / "python"), "-c", "import hil, json, sys; print(json.dumps([hil.__file__, sys.path]))"],
                home, env)
    hil_file, path = json.loads(where.stdout)
    assert Path(hil_file).is_relative_to(venv), hil_file
    assert not [p for p in path if p and Path(p).resolve().is_relative_to(ROOT)], path
    version = run([str(bin_ / "hil"), "--version"], home, env)
    assert version.returncode == 0 and version.stdout.startswith(f"hil {__version__}"), version

    init = run([str(bin_ / "hil"), "init", "ours"], home, env)
    assert init.returncode == 0, init.stdout + init.stderr
    project = home / "ours"
    assert (project / "rigs" / "desk.toml").is_file() and (project / "suites" / "test_our_model.py").is_file()
    check = run([str(bin_ / "hil"), "rigs", "check", "desk"], project, env)
    assert check.returncode == 0 and str(project / "rigs" / "desk.toml") in check.stdout, check

    # the nightly and the plain run side by side: different results, so different simulated boards
    nightly = subprocess.Popen([str(bin_ / "hil"), "nightly", "--rig", "sim", "--results", "nightly"],
                               cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL)
    try:
        done = run([str(bin_ / "pytest"), "--rig", "sim", "-p", "no:cacheprovider"], project, env, timeout=900)
        night_out, night_err = nightly.communicate(timeout=900)
    finally:
        if nightly.poll() is None:
            nightly.kill()
            nightly.wait()
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-2000:]
    assert "suites/test_our_model.py" in out and "test_smoke.py" in out, out[-4000:]
    summary = out.strip().splitlines()[-1]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|errors?|xpassed)\b", summary)}
    assert not counts.get("failed") and not counts.get("error") and not counts.get("errors"), summary
    assert counts.get("passed", 0) >= 30, summary      # the shipped suites ran, not only the example
    assert nightly.returncode == 0, night_out[-3000:] + night_err[-3000:]
    assert "first night on rig sim" in night_out
    assert (project / "nightly" / "report.html").is_file() and (project / "nightly" / "compare.md").is_file()
    assert oct((project / "nightly" / "report.html").stat().st_mode & 0o777) == oct(0o666 & ~current_umask())
    print(f"wheel {wheel.stat().st_size} bytes; venv + install {installed_s:.1f} s; "
          f"whole test {time.monotonic() - t0:.1f} s")


def current_umask() -> int:
    from hil.atomicfile import current_umask as umask
    return umask()
