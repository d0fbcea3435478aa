"""Manifest models (fixtures/models/manifest.toml) on the board, through the file cache.

Where: ``/sd/hil/`` when the firmware mounted a card, else ``/flash/hil_`` (SPIFFS on MaixPy
v0.6.2 has no directories: a name prefix). ``models.put(fixture)`` puts one there (or at a path
given), verified against the manifest's sha256; ``models.sized(recipe, path)`` a model of a size
for memory tests; ``models.good()`` is the smallest committed model
the build loads, on the board: the "board still works" check of the suites.
"""
from __future__ import annotations

import hashlib
from typing import Any

from hil.board.state import RebootCause
from hil.device.api import Device
from hil.device.files import FileCache
from hil.errors import ConfigError
from hil.kmodel.fixtures import Fixture, Recipe, committed_loadable, ensure_fixture, make

SD_DIR = "/sd/hil"
FLASH_PREFIX = "/flash/hil_"


class ModelStore:
    def __init__(self, device: Device, files: FileCache, profile: Any) -> None:
        self.device = device
        self.files = files
        self.profile = profile
        self._root: str | None = None
        self._sized: dict[str, tuple[Recipe, str]] = {}     # path -> (recipe, sha256) written this session
        device.lifecycle.subscribe(self)

    def rebooted(self, cause: RebootCause) -> None:
        if not cause.keeps_files:
            self._root = None          # a card may have come or gone

    def reconnected(self) -> None:
        pass

    @property
    def root(self) -> str:
        """``/sd/hil/`` with a card (made if need be), else ``/flash/hil_``."""
        if self._root is None:
            if self.device.sd_present():
                self.files.makedirs(SD_DIR)
                self._root = SD_DIR + "/"
            else:
                self._root = FLASH_PREFIX
        return self._root

    @property
    def on_sd(self) -> bool:
        return self.root.startswith("/sd/")

    def path(self, name: str) -> str:
        return self.root + name

    def put(self, fx: Fixture, path: str | None = None) -> str:
        """The fixture at ``path`` (default: its file name in the store), verified; the path."""
        path = path or self.path(fx.path.name)
        recipe = fx.recipe if fx.recipe.writer == "v3" else None
        data = ensure_fixture(fx.name).read_bytes() if fx.committed else None
        self.files.ensure(path, fx.sha256, data=data, recipe=recipe,
                          fetch=lambda: ensure_fixture(fx.name).read_bytes())
        return path

    def made(self, recipe: Recipe, path: str) -> str:
        """The model ``recipe`` makes, at ``path`` (on the board, verified); the path."""
        data = make(recipe)
        self.files.ensure(path, hashlib.sha256(data).hexdigest(), recipe=recipe, fetch=lambda: data)
        return path

    def sized(self, recipe: Recipe, path: str) -> str:
        """A model the loader treats as ``recipe``'s, at ``path`` (for memory tests, where only the
        header, tables and size count): ``made`` where the board writes models itself, else
        the lead grown to size (Device.write_sized), written once while the cache still holds it."""
        if self.device.can_generate(recipe):
            return self.made(recipe, path)
        done = self._sized.get(path)
        if done is None or done[0] != recipe or self.files.known(path) != done[1]:
            self._sized[path] = (recipe, self.files.sized(path, recipe))
        return path

    def smallest_good(self) -> Fixture:
        """The smallest committed model the build loads (ConfigError when the manifest has none)."""
        ok = committed_loadable(self.profile.kpu.load_versions)
        if not ok:
            raise ConfigError(f"profile {self.profile.name} loads kmodel v{self.profile.kpu.load_versions}: "
                              f"no committed fixture of those versions in the manifest")
        return ok[0]

    def good(self) -> str:
        """The smallest committed model the build loads, on the board; its path."""
        return self.put(self.smallest_good())
