"""What every emulated board declares, and how its rig table is read (see the package docstring).

An emulator class has ``name`` (its rig table, e.g. ``[qemu]``, and the word ``serial.port``
takes, since the console is only known once the emulator runs), ``keys`` (its table's TOML
keys), ``power`` (the power driver that starts, resets and stops it) and optionally ``finish``,
which resolves paths against the rig file's directory and checks keys against each other.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.drivers.registry import Registry
from hil.drivers.schema import Options, OptionsSpec, read_options
from hil.tomlcheck import Table

EMULATORS: Registry = Registry("emulator", "hil.drivers.emulator", "k210_hil.emulators")


@dataclass(frozen=True)
class EmulatorSpec(OptionsSpec):
    """A rig's emulator table: which emulator, and its options (``spec.binary`` reads one)."""
    kind: str
    options: Options = field(default_factory=Options)
    _label = "emulator"


class Emulator:
    name = ""
    keys: tuple = ()
    power = ""                   # the power driver that runs it
    description = ""

    @classmethod
    def finish(cls, table: Table, options: Options, rig_dir: Path) -> Options:
        """Options after cross-key checks and path resolution (problems: ``table.fail(key, ...)``)."""
        return options


def rig_file(table: Table, key: str, text: str, rig_dir: Path) -> Path | None:
    """A file a key names, relative to the rig file's directory; None for ""."""
    if not text:
        return None
    path = (rig_dir / os.path.expanduser(text)).resolve()
    if not path.is_file():
        raise table.fail(key, f"{text!r}: no such file ({path})")
    return path


def parse_emulator(top: Table, rig_dir: Path) -> EmulatorSpec | None:
    """The rig's emulator table, if it has one (at most one), read through the registry."""
    present = [name for name in EMULATORS.names() if name in top.data]
    if not present:
        return None
    if len(present) > 1:
        raise top.fail(present[1], f"a rig runs one emulated board: [{present[0]}] and [{present[1]}] "
                                   f"cannot both be given")
    cls = EMULATORS.get(present[0])
    table = top.sub(present[0])
    options = read_options(table, cls.keys, None)
    options = cls.finish(table, options, rig_dir)
    table.done()
    return EmulatorSpec(cls.name, options)
