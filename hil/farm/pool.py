"""Rig pools: ``rigs/pools/NAME.toml``, a list of equivalent rigs a run may spread over.

    [pool]
    name = "sim4"                     # must match the file name
    description = "four simulated Maix Bits"
    rigs = ["farm-sim-a", "farm-sim-b", "farm-sim-c", "farm-sim-d"]

Pools and the rig names in them are looked up as hil.rigdirs says (``pools/`` of each directory
of the lookup order); a path ending in .toml is taken as is (relative to the pool file). Every rig is loaded and
checked when the pool is, so a bad member is an error before anything is touched.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hil.errors import ConfigError, RigConfigError
from hil.rig import RigSpec, load_rig, rig_search
from hil.rigdirs import RigSearch
from hil.tomlcheck import named_table


@dataclass(frozen=True)
class PoolSpec:
    name: str
    description: str
    rigs: tuple[RigSpec, ...]
    path: Path


def pool_path(name_or_path: str, rig_dir: Path | RigSearch | None = None) -> Path:
    text = str(name_or_path)
    if text.endswith(".toml") or os.sep in text:
        return Path(text)
    search = rig_search(rig_dir)
    found = search.find(f"{text}.toml", "pools")
    if found is None:
        known = ", ".join(pool_names(search)) or "none"
        raise RigConfigError(f"rig pool {text!r} not found: no {text}.toml in {search.where('pools')} "
                             f"(known pools: {known})")
    return found


def pool_names(rig_dir: Path | RigSearch | None = None) -> list[str]:
    return sorted(rig_search(rig_dir).names("pools"))


def load_pool(name_or_path: str, rig_dir: Path | RigSearch | None = None) -> PoolSpec:
    """Load a pool and every rig in it; RigConfigError names the file and the key or rig at fault."""
    path = pool_path(name_or_path, rig_dir)
    top, p, name = named_table(path, "pool", RigConfigError)
    description = p.take("description", str, "")
    members = p.take_str_list("rigs")
    if not members:
        raise p.fail("rigs", "must list at least one rig")
    if len(set(members)) != len(members):
        dup = sorted({m for m in members if members.count(m) > 1})
        raise p.fail("rigs", f"lists {', '.join(dup)} more than once")
    p.done()
    top.done()
    rigs = []
    for member in members:
        where = path.parent / member if member.endswith(".toml") else member
        try:
            rigs.append(load_rig(where, rig_dir))
        except ConfigError as exc:
            raise RigConfigError(f"{path}: pool.rigs: {member!r}: {exc}") from None
    return PoolSpec(name=name, description=description, rigs=tuple(rigs), path=path)
