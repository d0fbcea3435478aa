"""The model fixture set: fixtures/models/manifest.toml, small committed files, large cached ones.

Every fixture has a recipe: the deterministic writer (build_v3/build_v4/broken/build_v5_stub with
its arguments) or nncase (a source model from hil/kmodel/nncase.py). Small fixtures are committed
next to the manifest (and shipped in the wheel); large ones are made on demand by
``ensure_fixture`` and checked against the manifest's sha256: into ``cache/`` beside the manifest
(git-ignored), or, for the manifest shipped inside an installed k210-hil, into the user's cache
(``~/.cache/k210-hil/models``, hil.resources.user_cache).

``expect`` is "load" or the hil.firmware.ErrorTexts key MaixPy (a build loading v3 and v4) raises.
On a build whose kpu.load_versions lacks the fixture's version it is "version" whatever expect
says; ``Fixture.expected_error(profile.kpu.load_versions)`` gives the answer for any build.

nncase 1.9 leaves the reserved top bits of the K210 activation-table words uninitialised, so
recompiling a v5 fixture can change a few bytes; ``hil models build`` then records the new sha256.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from hil.atomicfile import write_atomic as _write_atomic
from hil.errors import ConfigError
from hil.kmodel import build, nncase
from hil.kmodel.format import sniff_version
from hil.resources import installed, shipped, user_cache
from hil.tomlcheck import Table, load_toml

DEFAULT_DIR = shipped("fixtures")
MANIFEST = "manifest.toml"
CACHE = "cache"
WRITERS = ("v3", "v4", "broken", "v5stub", "nncase")
KiB, MiB = 1024, 1024 * 1024


@dataclass(frozen=True)
class Recipe:
    writer: str                 # one of WRITERS
    size: int = 0
    main_mem: int = build.DEFAULT_MAIN_MEM
    seed: int = 1
    kernel: int = 3
    kind: str = ""              # broken kind
    model: str = ""             # nncase source model
    nncase: str = ""            # nncase version that made it

    def describe(self) -> str:
        if self.writer in ("v3", "v4"):
            return (f"hil.kmodel.build.build_{self.writer}(size={self.size}, "
                    f"main_mem={self.main_mem}, seed={self.seed}, kernel={self.kernel})")
        if self.writer == "broken":
            return f"hil.kmodel.build.broken({self.kind!r}, seed={self.seed})"
        if self.writer == "v5stub":
            return f"hil.kmodel.build.build_v5_stub(seed={self.seed})"
        return (f"nncase {self.nncase} target k210 uint8 PTQ of hil.kmodel.nncase "
                f"{self.model!r} (seed={self.seed}): {nncase.MODELS[self.model].description}")


@dataclass(frozen=True)
class Fixture:
    name: str
    path: Path
    version: int                # what the header claims: 3, 4, 5, or 0 for no kmodel header
    size: int
    sha256: str
    expect: str                 # "load" or an ErrorTexts key
    origin: str                 # how it was made, in words
    committed: bool = True      # False: large, made on demand into cache/
    recipe: Recipe = Recipe("v3")

    def expected_error(self, load_versions: tuple[int, ...]) -> str | None:
        """The ErrorTexts key kpu.load raises on a build loading ``load_versions``; None: loads.

        A version the build does not load is rejected before anything else is looked at."""
        if self.version not in load_versions:
            return "version"
        return None if self.expect == "load" else self.expect


# The catalogue: (name, recipe, committed). Sizes are chosen to hit each layout family.
def catalogue() -> list[tuple[str, Recipe, bool]]:
    items: list[tuple[str, Recipe, bool]] = [
        ("v3_min", Recipe("v3", size=build.MIN_V3_SIZE, kernel=1), True),
        ("v3_small_1x1", Recipe("v3", size=6000, kernel=1), True),
        ("v3_small_3x3", Recipe("v3", size=16 * KiB, kernel=3), True),
        ("v3_pad_short", Recipe("v3", size=12345, kernel=3), True),
        ("v3_bulk_3x3", Recipe("v3", size=40 * KiB, kernel=3), True),
        ("v4_min", Recipe("v4", size=build.MIN_V4_SIZE, kernel=1), True),
        ("v4_small_3x3", Recipe("v4", size=16 * KiB, kernel=3), True),
        ("v5_conv_relu", Recipe("nncase", model="conv_relu", seed=0), True),
        ("v5_classifier", Recipe("nncase", model="classifier", seed=0), True),
        ("v3_1m", Recipe("v3", size=1 * MiB, kernel=3), False),
        ("v3_2m", Recipe("v3", size=2 * MiB, kernel=3), False),
        ("v3_3m", Recipe("v3", size=3 * MiB, kernel=3), False),
        ("v4_1m", Recipe("v4", size=1 * MiB, kernel=3), False),
    ]
    items += [(f"broken_{k}", Recipe("broken", kind=k), True) for k in build.BROKEN_KINDS]
    return items


def make(recipe: Recipe) -> bytes:
    """The bytes of a deterministic recipe (nncase recipes compile, if nncase is installed)."""
    if recipe.writer == "v3":
        return build.build_v3(recipe.size, recipe.main_mem, recipe.seed, recipe.kernel)
    if recipe.writer == "v4":
        return build.build_v4(recipe.size, recipe.main_mem, recipe.seed, recipe.kernel)
    if recipe.writer == "broken":
        return build.broken(recipe.kind, recipe.seed)
    if recipe.writer == "v5stub":
        return build.build_v5_stub(recipe.seed)
    return nncase.compile_model(recipe.model, recipe.seed)


def _expect(recipe: Recipe) -> str:
    if recipe.writer == "broken":
        return build.EXPECTED_ERROR[recipe.kind]
    if recipe.writer in ("v5stub", "nncase"):
        return "version"          # no MaixPy-v1 build's kpu.load accepts v5
    return "load"


# ---------------------------------------------------------------------------------------------
# manifest reading
def _err(msg: str) -> ConfigError:
    return ConfigError(msg)


def _read_recipe(t: Table) -> Recipe:
    r = Recipe(writer=t.take_choice("writer", WRITERS), size=t.take("size", int, 0),
               main_mem=t.take("main_mem", int, build.DEFAULT_MAIN_MEM), seed=t.take("seed", int, 1),
               kernel=t.take("kernel", int, 3), kind=t.take("kind", str, ""),
               model=t.take("model", str, ""), nncase=t.take("nncase", str, ""))
    t.done()
    return r


def cache_dir(base: Path) -> Path:
    """Where the large fixtures of the manifest in ``base`` are made: ``cache/`` beside it, except
    for the manifest shipped inside an installed k210-hil (no place to write): the user's cache."""
    if installed() and Path(base).resolve() == DEFAULT_DIR.resolve():
        return user_cache("models")
    return Path(base) / CACHE


def load_manifest(dir: Path | str | None = None) -> list[Fixture]:
    """Every fixture listed in <dir>/manifest.toml (default: the checkout's fixtures/models)."""
    base = Path(dir) if dir is not None else DEFAULT_DIR
    path = base / MANIFEST
    top = Table(path, "", load_toml(path, _err), _err)
    rows = top.take("fixture", list)
    top.done()
    out, seen = [], set()
    for i, row in enumerate(rows):
        t = Table(path, f"fixture[{i}]", row, _err)
        name = t.take("name", str)
        if name in seen:
            raise t.fail("name", f"duplicate fixture name {name!r}")
        seen.add(name)
        committed = t.take("committed", bool)
        file = t.take("file", str)
        if "/" in file or "\\" in file or file.startswith("."):
            raise t.fail("file", f"{file!r} must be a plain file name")
        fx = Fixture(name=name, path=(base if committed else cache_dir(base)) / file,
                     version=t.take("version", int), size=t.take("size", int),
                     sha256=t.take("sha256", str), expect=t.take("expect", str),
                     origin=t.take("origin", str), committed=committed,
                     recipe=_read_recipe(t.sub("recipe")))
        t.done()
        out.append(fx)
    return out


def get_fixture(name: str, dir: Path | str | None = None) -> Fixture:
    fixtures = load_manifest(dir)
    for fx in fixtures:
        if fx.name == name:
            return fx
    known = ", ".join(f.name for f in fixtures)
    raise ConfigError(f"model fixture {name!r} is not in the manifest (known: {known})")


@functools.lru_cache(maxsize=None)
def manifest() -> tuple[Fixture, ...]:
    """The checkout's manifest, read once."""
    return tuple(load_manifest())


def well_formed() -> list[Fixture]:
    """Well-formed models of every version (v3, v4 from the writers, v5 from nncase)."""
    return [f for f in manifest() if f.recipe.writer != "broken"]


def broken_models() -> list[Fixture]:
    return [f for f in manifest() if f.recipe.writer == "broken"]


def smallest_per_version() -> list[Fixture]:
    """The smallest committed well-formed model of each version."""
    best: dict[int, Fixture] = {}
    for f in well_formed():
        if f.committed and (f.version not in best or f.size < best[f.version].size):
            best[f.version] = f
    return [best[v] for v in sorted(best)]


def committed_loadable(load_versions: tuple[int, ...], version: int | None = None) -> list[Fixture]:
    """Committed well-formed models a build loading ``load_versions`` loads (of ``version`` only,
    if given), smallest first."""
    return sorted((f for f in well_formed() if f.committed and f.version in load_versions
                   and (version is None or f.version == version)), key=lambda f: f.size)


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file and rename, so no half-written file ever has the name
    (mode as the umask allows, like any file made with open())."""
    _write_atomic(path, data, fsync=False)


def ensure_fixture(name: str, dir: Path | str | None = None) -> Path:
    """The fixture's file, verified against the manifest's sha256; large ones are built on demand."""
    fx = get_fixture(name, dir)
    if fx.path.is_file() and _sha(fx.path) == fx.sha256:
        return fx.path
    if fx.committed:
        state = "missing" if not fx.path.is_file() else "changed (sha256 differs from the manifest)"
        raise ConfigError(f"model fixture {name}: {fx.path} is {state}; run `hil models build`")
    data = make(fx.recipe)
    got = hashlib.sha256(data).hexdigest()
    if got != fx.sha256:
        raise ConfigError(f"model fixture {name}: the writer now makes sha256 {got[:16]}..., the "
                          f"manifest says {fx.sha256[:16]}...; run `hil models build`")
    write_atomic(fx.path, data)
    return fx.path


# ---------------------------------------------------------------------------------------------
# regenerating the set
def _toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=True)


def _entry(fx: Fixture) -> str:
    r = fx.recipe
    lines = ["[[fixture]]", f"name = {_toml_str(fx.name)}", f"file = {_toml_str(fx.path.name)}",
             f"version = {fx.version}", f"size = {fx.size}", f"sha256 = {_toml_str(fx.sha256)}",
             f"expect = {_toml_str(fx.expect)}", f"origin = {_toml_str(fx.origin)}",
             f"committed = {'true' if fx.committed else 'false'}", "[fixture.recipe]",
             f"writer = {_toml_str(r.writer)}"]
    if r.writer in ("v3", "v4"):
        lines += [f"size = {r.size}", f"main_mem = {r.main_mem}", f"kernel = {r.kernel}"]
    if r.writer == "broken":
        lines.append(f"kind = {_toml_str(r.kind)}")
    if r.writer == "nncase":
        lines += [f"model = {_toml_str(r.model)}", f"nncase = {_toml_str(r.nncase)}"]
    lines.append(f"seed = {r.seed}")
    return "\n".join(lines) + "\n"


def write_manifest(dir: Path, fixtures: list[Fixture]) -> None:
    head = ("# Model fixtures: generated by `hil models build`; edit hil/kmodel/fixtures.py instead.\n"
            "# committed = false: made on demand into cache/ by hil.kmodel.fixtures.ensure_fixture.\n"
            "# expect = \"load\" (where the firmware loads that version) or an ErrorTexts key.\n\n")
    write_atomic(dir / MANIFEST, (head + "\n".join(_entry(f) for f in fixtures)).encode())


def build_all(dir: Path | str | None = None,
              log: Callable[[str], None] = lambda s: None) -> list[tuple[Fixture, str]]:
    """Regenerate every fixture into ``dir`` and rewrite its manifest; returns (fixture, note).

    Writer fixtures are always rebuilt. nncase fixtures are compiled when nncase is importable;
    otherwise the existing file and manifest entry are kept (note says so).
    """
    base = Path(dir) if dir is not None else DEFAULT_DIR
    try:
        old = {f.name: f for f in load_manifest(base)}
    except ConfigError:
        old = {}
    have_nncase = nncase.available()
    out: list[tuple[Fixture, str]] = []
    for name, recipe, committed in catalogue():
        note = "built"
        if recipe.writer == "nncase":
            if have_nncase:
                recipe = Recipe(**{**recipe.__dict__, "nncase": nncase.nncase_version()})
            else:
                prev = old.get(name)
                if prev is None or not prev.path.is_file():
                    log(f"{name}: nncase is not installed and no committed file exists: skipped")
                    continue
                out.append((prev, "kept (nncase not installed)"))
                continue
        data = make(recipe)
        file = f"{name}.kmodel"
        path = (base if committed else cache_dir(base)) / file
        if committed:
            write_atomic(path, data)
        else:
            note = "recorded (made on demand into cache/)"
        fx = Fixture(name=name, path=path, version=sniff_version(data) or 0, size=len(data),
                     sha256=hashlib.sha256(data).hexdigest(), expect=_expect(recipe),
                     origin=recipe.describe(), committed=committed, recipe=recipe)
        out.append((fx, note))
    write_manifest(base, [f for f, _ in out])
    return out
