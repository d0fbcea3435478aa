"""hil.kmodel.fixtures: the manifest matches the committed files, large ones are made on demand."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from hil.errors import ConfigError
from hil.kmodel import fixtures as fx
from hil.kmodel.format import parse_kmodel, sniff_version
from hil.kmodel.verdict import maixpy_load_error

KEYS = {"load", "version", "body_size", "first_layer", "read_file"}


def test_manifest_lists_every_catalogue_entry() -> None:
    names = [f.name for f in fx.load_manifest()]
    assert sorted(names) == sorted(name for name, _, _ in fx.catalogue())
    assert len(names) == len(set(names))


def test_committed_files_match_the_manifest_and_stay_small() -> None:
    committed = [f for f in fx.load_manifest() if f.committed]
    total = 0
    for f in committed:
        data = f.path.read_bytes()
        total += len(data)
        assert len(data) == f.size and hashlib.sha256(data).hexdigest() == f.sha256, f.name
        assert (sniff_version(data) or 0) == f.version, f.name
    assert total < 200 * 1024
    on_disk = {p.name for p in fx.DEFAULT_DIR.glob("*.kmodel")}
    assert on_disk == {f.path.name for f in committed}


def test_expectations_match_what_maixpy_does() -> None:
    for f in fx.load_manifest():
        assert f.expect in KEYS, f.name
        if not f.committed:
            continue
        data = f.path.read_bytes()
        for versions in ((3, 4), (3,)):
            assert maixpy_load_error(data, versions) == f.expected_error(versions), (f.name, versions)
        if f.expect == "load":
            info = parse_kmodel(data, f.name)
            assert info.version == f.version and info.file_size == f.size


def test_fixture_kinds_present() -> None:
    by_name = {f.name: f for f in fx.load_manifest()}
    assert {"v3_small_1x1", "v3_small_3x3", "v4_small_3x3", "v5_conv_relu",
            "v5_classifier"} <= set(by_name)
    assert by_name["v5_conv_relu"].recipe.writer == "nncase"
    assert by_name["v5_conv_relu"].recipe.nncase.startswith("1.")
    assert any(not f.committed and f.size >= 2 * 1024 * 1024 for f in by_name.values())
    assert "nncase" in by_name["v5_classifier"].origin


def copy_manifest(tmp_path: Path) -> Path:
    d = tmp_path / "models"
    d.mkdir()
    shutil.copy(fx.DEFAULT_DIR / fx.MANIFEST, d / fx.MANIFEST)
    for f in fx.load_manifest():
        if f.committed:
            shutil.copy(f.path, d / f.path.name)
    return d


def test_ensure_fixture_builds_a_large_one_once(tmp_path: Path) -> None:
    d = copy_manifest(tmp_path)
    path = fx.ensure_fixture("v3_1m", d)
    assert path == d / "cache" / "v3_1m.kmodel" and path.stat().st_size == 1024 * 1024
    mtime = path.stat().st_mtime_ns
    assert fx.ensure_fixture("v3_1m", d) == path and path.stat().st_mtime_ns == mtime
    path.write_bytes(b"stale")                          # a stale cache entry is rebuilt
    assert fx.ensure_fixture("v3_1m", d).stat().st_size == 1024 * 1024
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]   # no temp files


def test_ensure_fixture_refuses_a_changed_committed_file(tmp_path: Path) -> None:
    d = copy_manifest(tmp_path)
    assert fx.ensure_fixture("v3_small_1x1", d) == d / "v3_small_1x1.kmodel"
    (d / "v3_small_1x1.kmodel").write_bytes(b"\0" * 10)
    with pytest.raises(ConfigError, match="v3_small_1x1.*changed.*hil models build"):
        fx.ensure_fixture("v3_small_1x1", d)
    with pytest.raises(ConfigError, match="'nope' is not in the manifest"):
        fx.ensure_fixture("nope", d)


def test_bad_manifest_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / fx.MANIFEST).write_text('[[fixture]]\nname = "a"\n')
    with pytest.raises(ConfigError) as exc:
        fx.load_manifest(tmp_path)
    assert "manifest.toml" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match="no such file"):
        fx.load_manifest(tmp_path / "missing")


def test_build_all_into_a_fresh_dir(tmp_path: Path) -> None:
    out = fx.build_all(tmp_path / "fresh")
    names = {f.name for f, _ in out}
    by_name = {f.name: f for f in fx.load_manifest()}
    for f, note in out:
        if f.recipe.writer != "nncase":           # writer fixtures are reproducible to the byte
            assert f.sha256 == by_name[f.name].sha256, f.name
    assert names <= set(by_name)
    assert [f.name for f in fx.load_manifest(tmp_path / "fresh")] == [f.name for f, _ in out]


def test_installed_large_fixtures_go_to_the_users_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed from a wheel, the shipped manifest's directory is no place to write: a large
    fixture is made into $HIL_CACHE_DIR/models (else ~/.cache/k210-hil/models)."""
    monkeypatch.setattr(fx, "installed", lambda: True)
    monkeypatch.setenv("HIL_CACHE_DIR", str(tmp_path / "cache"))
    assert fx.cache_dir(fx.DEFAULT_DIR) == tmp_path / "cache" / "models"
    assert fx.cache_dir(tmp_path / "mine") == tmp_path / "mine" / "cache"     # a copy of one's own: beside it
    path = fx.ensure_fixture("v4_1m")
    assert path == tmp_path / "cache" / "models" / "v4_1m.kmodel"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fx.get_fixture("v4_1m").sha256
    assert fx.get_fixture("v3_small_3x3").path.parent == fx.DEFAULT_DIR          # committed ones stay shipped
