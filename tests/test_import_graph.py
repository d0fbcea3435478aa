"""The framework reaches the simulated board only as a device: nothing under hil/ imports k210sim.

A static scan of every hil/**/*.py: import statements anywhere (module level, inside functions,
under ``if TYPE_CHECKING``), ``importlib.import_module(...)`` and ``__import__(...)`` with a
literal name. The simulator is started as ``python -m k210sim`` and driven through its serial
port and control socket; an import would let framework code share the simulator's objects and
its idea of what the firmware does.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = "k210sim"


def _is_forbidden(name: str | None) -> bool:
    return bool(name) and (name == FORBIDDEN or name.startswith(FORBIDDEN + "."))


def forbidden_imports(source: str, filename: str = "<src>") -> list[str]:
    """``line: what`` for every import of the simulator package in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if _is_forbidden(a.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and _is_forbidden(node.module):
                found.append(f"{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
            if name in ("import_module", "__import__") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and _is_forbidden(arg.value):
                    found.append(f"{node.lineno}: {name}({arg.value!r})")
    return found


def test_no_hil_module_imports_the_simulator() -> None:
    files = sorted((ROOT / "hil").rglob("*.py"))
    assert len(files) > 40, "the scan found too few framework modules: wrong root?"
    offenders = {}
    for path in files:
        hits = forbidden_imports(path.read_text(encoding="utf-8"), str(path))
        if hits:
            offenders[str(path.relative_to(ROOT))] = hits
    assert not offenders, f"hil/ must reach the simulator only as a device; imports found: {offenders}"


@pytest.mark.parametrize("source", [
    "import k210sim",
    "import k210sim.server as s",
    "from k210sim import server",
    "from k210sim.maixpy.kpu import x",
    "def f():\n    from k210sim.control import ControlClient\n",
    "if TYPE_CHECKING:\n    import k210sim.builds\n",
    "import importlib\nimportlib.import_module('k210sim.server')\n",
    "__import__('k210sim')\n",
])
def test_the_scan_sees_every_kind_of_import(source: str) -> None:
    assert forbidden_imports(source), source


@pytest.mark.parametrize("source", [
    "import k210simx", "from hil.simcontrol import SimControl", "x = 'k210sim'",
    "subprocess.run([sys.executable, '-m', 'k210sim', 'serve'])",
    "importlib.util.find_spec('k210sim')",
])
def test_the_scan_allows_launching_and_names(source: str) -> None:
    assert not forbidden_imports(source), source
