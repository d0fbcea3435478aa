"""The framework's shape, checked: no import cycle between its modules, one owner of the board's
state, modules of one job (at most 400 lines), and no comment citing a file its readers lack.

"The framework" is hil/; the simulated board is a package of its own (k210sim, kept out of hil/ by
tests/test_import_graph.py).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HIL = ROOT / "hil"
LIFECYCLE = {"hil.board.lifecycle", "hil.board.recovery", "hil.board.isp"}
MAX_LINES = 400


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def framework_modules(root: Path = ROOT, package: str = "hil") -> dict[str, Path]:
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        name = module_name(path, root)
        if name == f"{package}.sim" or name.startswith(f"{package}.sim."):
            continue
        found[name] = path
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> framework modules it imports (at any depth of its code, TYPE_CHECKING included).
    ``from a.b import c`` counts as importing a.b.c when that is a module, else a.b."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_framework_modules() -> None:
    graph = import_graph(framework_modules())
    assert "hil.board.board" in graph and "hil.plugin.session" in graph
    assert not cycles(graph), cycles(graph)


def test_the_cycle_check_catches_a_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "hil"
    (pkg / "board").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "board" / "__init__.py").write_text("")
    (pkg / "board" / "board.py").write_text("def device():\n    from hil.device import Device\n")
    (pkg / "device.py").write_text("from hil.board import board\n")
    graph = import_graph(framework_modules(tmp_path))
    assert cycles(graph) == [["hil.board.board", "hil.device"]]


# -- one owner of the board's state ---------------------------------------------------------------------
# What restarts or reflashes a board, or waits for its boot: allowed only in the lifecycle. The
# flavour's boot console (hil.device.micropython.boot) says how; only the lifecycle calls it.
BOOT_CALLS = {"wait_boot", "request_soft_reset", "kick", "await_reboot"}   # on anything but the lifecycle
POWER_CALLS = {"reset", "cycle", "on", "off", "enter_isp"}
BOOT_NAMES = {"BANNER_RE", "INIT_END"}
OWN_MODULES = {"hil.device.micropython.boot", "hil.device.micropython.bootlog", "hil.device.agent.boot"}
# A flavour's console that sees a boot where an answer should be tells everyone (and only that).
ANNOUNCERS = {"hil.device.micropython.repl", "hil.device.agent.boot"}
# `hil flash` is a standalone ISP tool like kflash: no board session, no state to own.
STANDALONE = {"hil.commands.flash"}


def _receiver(node: ast.AST) -> str:
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def lifecycle_violations(modules: dict[str, Path]) -> list[str]:
    bad = []
    for name, path in modules.items():
        if name in LIFECYCLE or name in STANDALONE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            where = f"{name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                attr, recv = node.func.attr, _receiver(node.func.value)
                if attr in BOOT_CALLS and recv != "lifecycle" and name not in OWN_MODULES:
                    bad.append(f"{where}: {recv}.{attr}()")
                if attr in POWER_CALLS and recv == "power":
                    bad.append(f"{where}: power.{attr}()")
                if attr == "rebooted" and recv == "events" and name not in ANNOUNCERS:
                    bad.append(f"{where}: announces a reboot")
                if attr == "write" and node.args and isinstance(node.args[0], ast.Constant) \
                        and node.args[0].value == b"\x04" and name not in OWN_MODULES:
                    bad.append(f"{where}: writes Ctrl-D (a soft reset)")
            if isinstance(node, ast.Call) and _receiver(node.func) == "IspFlasher":
                bad.append(f"{where}: IspFlasher()")
            if isinstance(node, (ast.Name, ast.alias)) and (getattr(node, "id", None) or getattr(node, "name", None)) \
                    in BOOT_NAMES and name not in OWN_MODULES:
                bad.append(f"{where}: recognises the boot banner")
    return bad


def test_nothing_outside_the_lifecycle_resets_reflashes_or_waits_for_a_boot() -> None:
    assert not lifecycle_violations(framework_modules())


def test_the_lifecycle_check_catches_a_reset_elsewhere(tmp_path: Path) -> None:
    pkg = tmp_path / "hil"
    pkg.mkdir()
    (pkg / "device.py").write_text(
        "def gc(self):\n    self.board.power.cycle()\n    self.boot.wait_boot()\n    self.lifecycle.wait_boot()\n"
        "    self.repl.console.write(b'\\x04')\n    from hil.isp.flasher import IspFlasher\n    IspFlasher(1)\n")
    assert [v.split(": ", 1)[1] for v in lifecycle_violations(framework_modules(tmp_path))] == [
        "power.cycle()", "boot.wait_boot()", "writes Ctrl-D (a soft reset)", "IspFlasher()"]


# -- small modules, honest comments ------------------------------------------------------------------------
def test_no_framework_module_over_400_lines() -> None:
    long = {name: n for name, path in framework_modules().items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, long


CITES_MISSING = re.compile(r"\bfacts/|sim-contract|runrecord-contract|/work/|shared/facts")


@pytest.mark.parametrize("where", ["hil", "k210sim", "suites", "docs", "tests", "bench", "rigs"])
def test_no_comment_cites_a_file_the_readers_do_not_have(where: str) -> None:
    bad = []
    for path in sorted((ROOT / where).rglob("*")):
        if path.suffix not in (".py", ".md", ".toml", ".c"):
            continue
        if path.name == Path(__file__).name:
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if CITES_MISSING.search(line):
                bad.append(f"{path.relative_to(ROOT)}:{number}")
    assert not bad, bad


def test_every_import_in_the_framework_resolves() -> None:
    """Lazy imports inside functions too: a module moved without its callers fails here, not
    when a user first reaches that code path."""
    import importlib.util
    missing = []
    for name, path in framework_modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                if target.split(".")[0] == "hil" and importlib.util.find_spec(target) is None:
                    missing.append(f"{name}:{node.lineno}: {target}")
    assert not missing, missing
