"""``hil init [DIR]``: the files a firmware team starts from, written from ``templates/``.

    pytest.ini                your suites and the shipped ones (hil.suites); hil_rig_dir = rigs
    conftest.py               what your suites share
    rigs/RIG.toml             your board, commented (port, power driver, firmware profile)
    rigs/firmware/README.md   how to add a profile for your own build
    suites/test_our_model.py  an example suite of your own, next to the shipped ones
    ci/hil-nightly.yml        the nightly run (GitHub Actions; a cron line in its comments)
    .gitignore                results/

Nothing is overwritten unless asked: an existing file is one error naming it. Each file is
written whole (beside, then renamed), so an interrupted init leaves no half file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hil import __version__
from hil.atomicfile import write_atomic
from hil.boards import BOARDS, USB_CH552_FT2232
from hil.errors import ConfigError

TEMPLATES = Path(__file__).resolve().parent / "templates"
DEFAULT_RIG = "desk"
DEFAULT_PROFILE = "maixpy-v0.6.2-full"


@dataclass(frozen=True)
class Planned:
    path: str        # relative to the project
    template: str
    what: str        # one line for the summary


def plan(rig: str) -> list[Planned]:
    return [
        Planned("pytest.ini", "pytest.ini.tmpl", "your suites and the shipped ones; hil_rig_dir = rigs"),
        Planned("conftest.py", "conftest.py.tmpl", "what your suites share (fixtures, a power driver)"),
        Planned(f"rigs/{rig}.toml", "rig.toml.tmpl", "your board: set the port, power driver, profile"),
        Planned("rigs/firmware/README.md", "firmware-README.md.tmpl", "adding a profile for your own build"),
        Planned("suites/test_our_model.py", "test_our_model.py.tmpl", "an example suite of your own"),
        Planned("ci/hil-nightly.yml", "hil-nightly.yml.tmpl", "the nightly run in CI (and a cron line)"),
        Planned(".gitignore", "gitignore.tmpl", "results/ stays out of git"),
    ]


def _check_name(rig: str) -> None:
    if not rig or not all(c.isalnum() or c in "-_." for c in rig) or rig.startswith("."):
        raise ConfigError(f"--rig {rig!r}: a rig name is letters, digits, '-', '_' and '.' "
                          "(it names rigs/NAME.toml)")


def values(rig: str, board_name: str, profile: str) -> dict[str, str]:
    if board_name not in BOARDS:
        raise ConfigError(f"--board {board_name!r} is not one of: {', '.join(BOARDS)}")
    _check_name(rig)
    board = BOARDS[board_name]
    # Sipeed's CH552 boards show two ports; the K210's UART is the second one.
    port = "/dev/ttyUSB1" if board.usb_ids == (USB_CH552_FT2232,) else "/dev/ttyUSB0"
    return {"@RIG@": rig, "@BOARD@": board.name, "@TITLE@": board.title, "@PORT@": port,
            "@RESET@": board.reset_line.upper(), "@BOOT@": board.boot_line.upper(),
            "@KFLASH@": board.kflash_board, "@PROFILE@": profile, "@VERSION@": __version__}


def render(template: str, subst: dict[str, str]) -> str:
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    for key, value in subst.items():
        text = text.replace(key, value)
    return text


def write_project(dest: Path, rig: str = DEFAULT_RIG, board: str = "maix-bit",
                  profile: str = DEFAULT_PROFILE, force: bool = False) -> list[Planned]:
    """Write the starting project into ``dest``; the files written, in order."""
    subst = values(rig, board, profile)
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise ConfigError(f"{dest} exists and is not a directory")
    files = plan(rig)
    if not force:
        clash = [f.path for f in files if (dest / f.path).exists()]
        if clash:
            raise ConfigError(f"{dest / clash[0]} already exists"
                              + (f" (and {len(clash) - 1} more of its files)" if len(clash) > 1 else "")
                              + "; nothing written (--force overwrites)")
    for f in files:
        _write(dest / f.path, render(f.template, subst))
    return files


def _write(path: Path, text: str) -> None:
    try:
        write_atomic(path, text, fsync=False)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
