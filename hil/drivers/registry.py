"""A registry of one kind of pluggable part (power drivers today): name -> class with its schema.

A registered class has ``name`` (what a rig file says), ``keys`` (hil.drivers.schema.Key, its
TOML keys), and whatever the kind needs besides (power: capabilities, ``create``, ``check``).
Built-ins are the modules of the kind's package, imported on the first lookup; parts from other
packages come from the entry-point group, or register when their module is imported.
"""
from __future__ import annotations

import importlib
import pkgutil
from importlib import metadata
from typing import Any, Generic, TypeVar

from hil.errors import ConfigError

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    def __init__(self, kind: str, package: str, group: str) -> None:
        self.kind = kind
        self.package = package
        self.group = group
        self._classes: dict[str, T] = {}
        self._loaded = False

    def register(self, cls: T) -> T:
        """Class decorator: add a driver (a second class under a taken name is an error)."""
        name = getattr(cls, "name", "")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{self.kind} driver {cls.__qualname__}: needs a non-empty class attribute 'name'")
        held = self._classes.get(name)
        if held is not None and held is not cls and held.__qualname__ != cls.__qualname__:
            raise ConfigError(f"{self.kind} driver {name!r}: already registered by "
                              f"{held.__module__}.{held.__qualname__}")
        seen: set[str] = set()
        for key in getattr(cls, "keys", ()):
            if key.name in seen:
                raise ConfigError(f"{self.kind} driver {name!r}: key {key.name!r} declared twice")
            seen.add(key.name)
        self._classes[name] = cls
        return cls

    def unregister(self, name: str) -> None:
        self._classes.pop(name, None)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        package = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self.package}.{info.name}")
        for entry in metadata.entry_points(group=self.group):
            try:
                entry.load()
            except Exception as exc:  # noqa: BLE001 - a broken plug-in is one line, not a traceback
                raise ConfigError(f"{self.kind} driver entry point {entry.name!r} ({entry.value}) "
                                  f"failed to load: {exc}") from None

    def names(self) -> tuple[str, ...]:
        self._load()
        return tuple(sorted(self._classes))

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._classes[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} driver {name!r} (known: {', '.join(self.names())})") from None

    def __contains__(self, name: Any) -> bool:
        self._load()
        return name in self._classes
