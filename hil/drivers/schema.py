"""The TOML keys a driver declares, read and checked with one-line errors naming file and key.

A driver lists its keys as ``Key`` objects; ``read_options`` takes exactly those from the
driver's table (tomlcheck.Table: anything else in it is an error naming the allowed keys) into
an ``Options`` mapping, which reads like attributes (``spec.off_time``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

from hil.tomlcheck import Table

REQUIRED: Any = object()
KINDS = (str, int, float, bool, "argv", "strs")


MAX_SECONDS = 3600.0      # no power command or pause is meant to take longer than an hour


def positive(value: float) -> str:
    return "" if value > 0 else "must be > 0"


def not_negative(value: float) -> str:
    return "" if value >= 0 else "must be >= 0"


def seconds(value: float) -> str:
    """A wait: > 0 and at most MAX_SECONDS (a wait with no end is a typo, never a setting)."""
    return positive(value) or ("" if value <= MAX_SECONDS else f"must be at most {MAX_SECONDS:g} seconds")


def pause(value: float) -> str:
    """A pause that may be zero, at most MAX_SECONDS."""
    return not_negative(value) or ("" if value <= MAX_SECONDS else f"must be at most {MAX_SECONDS:g} seconds")


def filled(example: str) -> Callable[[Any], str]:
    """A string or list that must not be empty; ``example`` shows a good value."""
    return lambda value: "" if value else f"must not be empty, e.g. {example}"


@dataclass(frozen=True)
class Key:
    """One TOML key of a driver's table.

    ``kind``: str, int, float, bool, "argv" (a non-empty list of strings, run without a shell) or
    "strs" (a list of strings). ``default``: a value, REQUIRED, or a callable of the rig context
    returning one (REQUIRED included). ``check`` returns the problem with a value ("" = fine).
    ``field``: the option's name when it differs from the key (uhubctl's ``port`` is ``hub_port``).
    """
    name: str
    kind: Any
    default: Any = REQUIRED
    check: Callable[[Any], str] | None = None
    field: str = ""
    help: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"key {self.name}: kind {self.kind!r} is not one of {KINDS}")

    @property
    def option(self) -> str:
        return self.field or self.name

    def read(self, table: Table, context: Any) -> Any:
        default = self.default(context) if callable(self.default) else self.default
        given = () if default is REQUIRED else (default,)
        if self.kind in ("argv", "strs"):
            value = table.take_str_list(self.name, *given)
            if self.kind == "argv" and not value:
                raise table.fail(self.name, 'must be a non-empty argv list, e.g. ["relayctl", "3", "on"]')
        else:
            value = table.take(self.name, self.kind, *given)
        problem = self.check(value) if self.check is not None else ""
        if problem:
            raise table.fail(self.name, f"{value!r}: {problem}" if not isinstance(value, (int, float))
                             else f"{problem}, got {value:g}")
        return value


class Options(Mapping):
    """A driver's options: a read-only, hashable mapping that also reads as attributes."""

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_values", dict(values or {}))

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no option {name!r} (options: {', '.join(self._values) or 'none'})") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("driver options are read-only")

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, repr(v)) for k, v in self._values.items())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self) == dict(other)

    def __repr__(self) -> str:
        return f"Options({self._values!r})"


class OptionsSpec:
    """Base of a rig table's spec (``[power]``, ``[emulator]``): its options read as attributes
    (``spec.off_time``), a missing one named with the driver that lacks it."""
    options: Options
    _label = "driver"            # what the first field names, for the error

    def _owner(self) -> str:
        from dataclasses import fields
        return f"{self._label} {getattr(self, fields(self)[0].name)!r}"   # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "options":
            raise AttributeError(name)
        try:
            return self.options[name]
        except KeyError:
            raise AttributeError(f"{self._owner()} has no option {name!r}") from None


def read_options(table: Table, keys: tuple[Key, ...], context: Any) -> Options:
    """Every declared key of ``table`` (the caller has taken the selector, e.g. ``driver``)."""
    return Options({key.option: key.read(table, context) for key in keys})
