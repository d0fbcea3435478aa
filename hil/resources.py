"""Where the shipped rigs, firmware profiles, model fixtures and suites are, and the user's cache.

Installed from a wheel they are inside the hil package (``hil/rigs``, ``hil/fixtures/models``,
``hil/suites``: setup.py maps the checkout's folders there). In a checkout (an editable install,
or none) they are the checkout's ``rigs/``, ``fixtures/models/`` and ``suites/`` beside ``hil/``.
"""
from __future__ import annotations

import os
from pathlib import Path

HIL = Path(__file__).resolve().parent
# name -> (place inside the installed package, place in the checkout)
_PLACES = {
    "rigs": (HIL / "rigs", HIL.parent / "rigs"),
    "fixtures": (HIL / "fixtures" / "models", HIL.parent / "fixtures" / "models"),
    "suites": (HIL / "suites", HIL.parent / "suites"),
    "agent": (HIL / "agent" / "sources", HIL.parent / "agent"),     # the C agent and reference firmware
}


def installed() -> bool:
    """True when hil runs from a wheel install (its data inside the package), not a checkout."""
    return (HIL / "rigs").is_dir()


def shipped(name: str) -> Path:
    """The shipped folder ``name`` ("rigs", "fixtures", "suites", "agent"), wherever hil runs from."""
    inside, checkout = _PLACES[name]
    return inside if inside.is_dir() or not checkout.is_dir() else checkout


def checkout() -> Path | None:
    """The checkout hil runs from (the folder holding hil/ and pyproject.toml), if any."""
    root = HIL.parent
    return None if installed() or not (root / "pyproject.toml").is_file() else root


def user_cache(*parts: str) -> Path:
    """``$HIL_CACHE_DIR``, else ``$XDG_CACHE_HOME/k210-hil``, else ``~/.cache/k210-hil``; joined
    with ``parts``. Not created here."""
    base = os.environ.get("HIL_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "k210-hil")
    return Path(base, *parts)
