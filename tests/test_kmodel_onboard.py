"""hil.device.micropython.code.kmodel_writer: the MicroPython writer rebuilds build_v3 byte for byte, in the board's dialect."""
from __future__ import annotations

import ast
import builtins
import hashlib
from pathlib import Path

import pytest

from hil.kmodel.build import build_v3
from hil.device.micropython.code.kmodel_writer import run_under_cpython, writer_snippet

MiB = 1024 * 1024


@pytest.mark.parametrize("size,main_mem,seed", [
    (513, 65536, 0), (520, 1, 1), (1537, 65536, 2), (4096, 65536, 3), (4097, 8192, 4),
    (12345, 65536, 5), (300_001, 100_000, 6), (3 * MiB + 5, 65536, 7),
])
def test_snippet_writes_what_the_host_builds(tmp_path: Path, size: int, main_mem: int,
                                             seed: int) -> None:
    path = tmp_path / "m.kmodel"
    src = writer_snippet(str(path), size, main_mem, seed)
    printed = run_under_cpython(src)
    want = build_v3(size, main_mem, seed)
    assert path.read_bytes() == want
    assert printed == hashlib.sha256(want).hexdigest() + "\n"


def test_snippet_kernel_option(tmp_path: Path) -> None:
    path = tmp_path / "k1.kmodel"
    run_under_cpython(writer_snippet(str(path), 50_000, 65536, 3, kernel=1))
    assert path.read_bytes() == build_v3(50_000, 65536, 3, kernel=1)


def test_snippet_writes_in_chunks_of_at_most_4096(tmp_path: Path, monkeypatch) -> None:
    writes: list[int] = []
    real_open = builtins.open

    class Recorder:
        def __init__(self, f) -> None:
            self.f = f

        def write(self, b: bytes) -> int:
            writes.append(len(b))
            return self.f.write(b)

        def close(self) -> None:
            self.f.close()

    def fake_open(path, mode="r", *a, **kw):
        f = real_open(path, mode, *a, **kw)
        return Recorder(f) if "w" in mode else f

    monkeypatch.setattr(builtins, "open", fake_open)
    path = tmp_path / "c.kmodel"
    run_under_cpython(writer_snippet(str(path), 200_000, 65536, 1))
    assert writes and max(writes) <= 4096 and sum(writes) == 200_000


def test_snippet_uses_only_the_board_dialect() -> None:
    src = writer_snippet("/sd/model.kmodel", 2 * MiB, 65536, 11)
    tree = ast.parse(src)
    for node in ast.walk(tree):
        assert not isinstance(node, (ast.JoinedStr, ast.NamedExpr, ast.AugAssign, ast.Lambda,
                                     ast.With, ast.ClassDef, ast.Global)), ast.dump(node)[:80]
        if isinstance(node, ast.Name):
            assert not node.id.startswith("_"), node.id
        if isinstance(node, (ast.Assign, ast.For)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            assert all(isinstance(t, ast.Name) for t in targets), "no unpacking, no slice assign"
        if isinstance(node, ast.Import):
            assert {a.name for a in node.names} <= {"uhashlib", "ubinascii", "ustruct", "struct"}
    called = {n.func.id for n in ast.walk(tree)
              if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert called <= {"open", "bytes", "range", "len", "print"}, called
    assert len(src) < 16_000                      # a 2 MiB model costs a few KB of source


def test_snippet_compiles_under_restrictedpython() -> None:
    restricted = pytest.importorskip("RestrictedPython")
    result = restricted.compile_restricted_exec(writer_snippet("/flash/a.kmodel", 70_000, 65536, 2))
    assert result.errors == ()


def test_snippet_rejects_a_path_with_a_line_break() -> None:
    with pytest.raises(ValueError, match="line break"):
        writer_snippet("/sd/a\n.kmodel", 4096, 65536, 0)
    with pytest.raises(ValueError, match="at least 513"):
        writer_snippet("/sd/a.kmodel", 10, 65536, 0)
