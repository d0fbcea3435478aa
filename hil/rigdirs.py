"""Where rig files, firmware profiles and rig pools are looked up. First match wins:

1. the project's rigs: ``--rig-dir DIR`` when given; otherwise ``hil_rig_dir`` from the project's
   pytest configuration (relative to that file), then ``./rigs``;
2. ``$HIL_RIG_DIR`` (one directory, or several joined with ``:``);
3. the rigs shipped with k210-hil (hil.resources: inside the package, or the checkout's rigs/).

A firmware profile a rig names is looked up in ``firmware/`` beside the rig file first, then in
``firmware/`` of each directory above, in the same order; a pool in ``pools/`` of each.

The project's pytest configuration is the file pytest itself would pick: the first of pytest.ini,
.pytest.ini, pyproject.toml (with [tool.pytest.ini_options]), tox.ini ([pytest]) and setup.cfg
([tool:pytest]) found from the current directory upwards. The pytest plugin passes pytest's own
reading instead (``RigSearch.for_pytest``), so a run and the ``hil`` commands agree.
"""
from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path

from hil.errors import ConfigError
from hil.resources import shipped
from hil.tomlcheck import load_toml

INI_KEY = "hil_rig_dir"
ENV = "HIL_RIG_DIR"
_INI_FILES = (("pytest.ini", "pytest"), (".pytest.ini", "pytest"), ("pyproject.toml", None),
              ("tox.ini", "pytest"), ("setup.cfg", "tool:pytest"))


@dataclass(frozen=True)
class RigDir:
    path: Path
    source: str          # how it got on the list: "--rig-dir", "pytest.ini hil_rig_dir", "./rigs", ...


@dataclass(frozen=True)
class RigSearch:
    dirs: tuple[RigDir, ...]

    @classmethod
    def default(cls, rig_dir: Path | str | None = None, cwd: Path | None = None) -> "RigSearch":
        """The lookup order seen from ``cwd`` (default: the current directory)."""
        cwd = Path(cwd) if cwd is not None else Path.cwd()
        if rig_dir is not None:
            return cls._build([RigDir(Path(rig_dir), "--rig-dir")])
        project: list[RigDir] = []
        found = project_config(cwd)
        if found is not None and found[1]:
            ini, value = found
            project.append(RigDir(ini.parent / value, f"{ini.name} {INI_KEY}"))
        project.append(RigDir(cwd / "rigs", "./rigs"))
        return cls._build(project)

    @classmethod
    def for_pytest(cls, config) -> "RigSearch":
        """The lookup order of a pytest run: its --rig-dir, else its ini file's hil_rig_dir."""
        explicit = config.getoption("rig_dir", default=None)
        if explicit:
            return cls._build([RigDir(Path(explicit), "--rig-dir")])
        project: list[RigDir] = []
        value = config.getini(INI_KEY) if config.inipath is not None else ""
        if value:
            project.append(RigDir(Path(config.inipath).parent / value, f"{Path(config.inipath).name} {INI_KEY}"))
        project.append(RigDir(Path(config.invocation_params.dir) / "rigs", "./rigs"))
        return cls._build(project)

    @classmethod
    def _build(cls, project: list[RigDir]) -> "RigSearch":
        dirs = list(project)
        for part in filter(None, os.environ.get(ENV, "").split(os.pathsep)):
            dirs.append(RigDir(Path(part), f"${ENV}"))
        dirs.append(RigDir(shipped("rigs"), "shipped with k210-hil"))
        unique: list[RigDir] = []
        for d in dirs:
            if not any(_same(d.path, u.path) for u in unique):
                unique.append(d)
        return cls(tuple(unique))

    def find(self, filename: str, sub: str = "") -> Path | None:
        """The first ``<dir>/<sub>/<filename>`` that exists."""
        for d in self.dirs:
            candidate = d.path / sub / filename if sub else d.path / filename
            if candidate.is_file():
                return candidate
        return None

    def names(self, sub: str = "") -> dict[str, Path]:
        """Every ``*.toml`` name in the order's directories, mapped to the file that wins."""
        found: dict[str, Path] = {}
        for d in self.dirs:
            folder = d.path / sub if sub else d.path
            if folder.is_dir():
                for p in sorted(folder.glob("*.toml")):
                    found.setdefault(p.stem, p)
        return found

    def where(self, sub: str = "") -> str:
        """The directories searched, for an error message."""
        return ", ".join(str(d.path / sub if sub else d.path) for d in self.dirs)

    def source_of(self, path: Path) -> str:
        for d in self.dirs:
            if _same(Path(path).parent, d.path) or _same(Path(path).parent.parent, d.path):
                return d.source
        return "given as a path"


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b


def project_config(start: Path) -> tuple[Path, str] | None:
    """(pytest's ini file seen from ``start``, its hil_rig_dir or ""), or None without one."""
    for folder in (start, *start.parents):
        for name, section in _INI_FILES:
            path = folder / name
            if not path.is_file():
                continue
            if section is None:
                data = load_toml(path, ConfigError)
                tool = data.get("tool", {})
                opts = tool.get("pytest", {}).get("ini_options") if isinstance(tool, dict) else None
                if not isinstance(opts, dict):
                    continue
                value = opts.get(INI_KEY, "")
                if not isinstance(value, str):
                    raise ConfigError(f"{path}: tool.pytest.ini_options.{INI_KEY}: must be a string "
                                      f"(a directory), got {value!r}")
                return path, value
            parser = configparser.ConfigParser(interpolation=None)
            try:
                parser.read(path, encoding="utf-8")
            except (configparser.Error, UnicodeDecodeError) as exc:
                raise ConfigError(f"{path}: unreadable: {' '.join(str(exc).split())}") from None
            if parser.has_section(section):
                return path, parser.get(section, INI_KEY, fallback="").strip()
            if name in ("pytest.ini", ".pytest.ini"):
                return path, ""        # pytest takes these even without a [pytest] section
    return None
