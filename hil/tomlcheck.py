"""Strict reading of TOML tables: every key typed, every unknown key an error naming file and key.

Used by the rig and firmware-profile loaders, so both give the same one-line errors.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

from hil.inputfile import read_regular

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10
    import tomli as tomllib

T = TypeVar("T")
INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63 - 1
_MISSING = object()

_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", float: "a number",
               list: "a list", dict: "a table"}


MAX_TOML_BYTES = 4 * 1024 * 1024     # rigs, profiles, pools and manifests are a few KiB


def load_toml(path: Path, error: Callable[[str], Exception]) -> dict[str, Any]:
    """Read a TOML file; any problem becomes ``error("<path>: <what>")``: a FIFO or a device
    instead of a file, a file too big to be a config, tables nested too deep to parse."""
    raw = read_regular(path, MAX_TOML_BYTES, "configuration file", error)
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except RecursionError:
        raise error(f"{path}: invalid TOML: nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: invalid TOML: {exc}") from None


def named_table(path: Path, table: str, error: Callable[[str], Exception]) -> tuple["Table", "Table", str]:
    """(the whole file, its ``[table]``, that table's ``name``), the name checked against the
    file name: rigs/NAME.toml, firmware/NAME.toml, pools/NAME.toml."""
    top = Table(path, "", load_toml(path, error), error)
    sub = top.sub(table)
    name = sub.take("name", str)
    if name != path.stem:
        raise sub.fail("name", f"{name!r} must match the file name {path.stem!r}")
    return top, sub, name


class Table:
    """One TOML table being read: take() each known key, then done() rejects the rest."""

    def __init__(self, file: Path, name: str, data: Any, error: Callable[[str], Exception]):
        self.file = file
        self.name = name
        self.error = error
        if not isinstance(data, dict):
            raise error(f"{file}: [{name}] must be a table, got {type(data).__name__}")
        self.data = data
        self.seen: set[str] = set()

    def where(self, key: str) -> str:
        return f"{self.file}: {self.name}.{key}" if self.name else f"{self.file}: {key}"

    def fail(self, key: str, problem: str) -> Exception:
        return self.error(f"{self.where(key)}: {problem}")

    def take(self, key: str, typ: type[T], default: Any = _MISSING) -> T:
        self.seen.add(key)
        if key not in self.data:
            if default is _MISSING:
                raise self.fail(key, "missing (required)")
            return default
        value = self.data[key]
        ok = isinstance(value, typ) and not (typ is int and isinstance(value, bool))
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise self.fail(key, f"must be {_TYPE_NAMES.get(typ, typ.__name__)}, "
                                 f"got {type(value).__name__} {value!r}")
        if typ is float and not math.isfinite(value):
            raise self.fail(key, f"must be a finite number, got {value!r}")
        if typ is int and not INT_MIN <= value <= INT_MAX:
            raise self.fail(key, f"{value} is out of range (TOML integers are 64-bit)")
        return value

    def take_choice(self, key: str, choices: tuple[str, ...], default: Any = _MISSING) -> str:
        value = self.take(key, str, default)
        if value not in choices and not (default is not _MISSING and value is default):
            raise self.fail(key, f"{value!r} is not one of: {', '.join(choices)}")
        return value

    def take_int_list(self, key: str, default: Any = _MISSING) -> tuple[int, ...]:
        value = self.take(key, list, default)
        if value is default and default is not _MISSING:
            return tuple(value)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise self.fail(key, f"must be a list of integers, got {value!r}")
        return tuple(value)

    def take_str_list(self, key: str, default: Any = _MISSING) -> tuple[str, ...]:
        value = self.take(key, list, default)
        if value is default and default is not _MISSING:
            return tuple(value)
        if not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"must be a list of strings, got {value!r}")
        return tuple(value)

    def sub(self, key: str, required: bool = True) -> "Table | None":
        self.seen.add(key)
        if key not in self.data:
            if required:
                raise self.error(f"{self.file}: [{self._join(key)}] missing (required)")
            return None
        return Table(self.file, self._join(key), self.data[key], self.error)

    def _join(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def done(self, allowed_hint: bool = True) -> None:
        extra = sorted(set(self.data) - self.seen)
        if extra:
            allowed = ", ".join(sorted(self.seen))
            what = f"[{self.name}]" if self.name else "top level"
            hint = f" (allowed in {what}: {allowed})" if allowed_hint else ""
            raise self.error(f"{self.where(extra[0])}: unknown key{hint}")
