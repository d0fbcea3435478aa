"""Every Python example in the docs (and the files `hil init` writes) parses and uses no name it
does not define or import: a reader can paste it as it is. Scopes are not told apart (a name bound
anywhere in the block counts), which is enough to catch a missing import or a placeholder."""
from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "hil" / "project" / "templates"


def examples() -> list[tuple[str, str]]:
    found = []
    for md in sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]:
        text = md.read_text()
        for m in re.finditer(r"```python\n(.*?)```", text, re.S):
            found.append((f"{md.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}", m.group(1)))
    for tmpl in sorted(TEMPLATES.glob("*.py.tmpl")):
        found.append((str(tmpl.relative_to(ROOT)), tmpl.read_text()))
    return found


def bound_names(tree: ast.AST) -> set[str]:
    bound = set(dir(builtins)) | {"__file__", "__name__"}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound


def undefined(code: str) -> list[str]:
    tree = ast.parse(code)
    bound = bound_names(tree)
    return sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
                   and n.id not in bound})


@pytest.mark.parametrize(("where", "code"), examples(), ids=[w for w, _ in examples()])
def test_example_uses_only_names_it_defines(where: str, code: str) -> None:
    assert undefined(code) == [], f"{where}: undefined names"


def test_the_checker_catches_a_missing_import() -> None:
    assert undefined("def test_x(kpu):\n    with pytest.raises(KpuLoadError):\n        kpu.load(0)\n") == [
        "KpuLoadError", "pytest"]
    assert undefined("write(allure_dir, host=socket.gethostname())") == ["allure_dir", "socket", "write"]


def test_there_are_examples_to_check() -> None:
    assert len(examples()) >= 6
