"""uos (and the weak link ``os``): MaixPy's VFS functions over /flash and /sd (hil.sim.maixpy.vfs)."""
from __future__ import annotations

import os as host_os
import re
import shutil
from typing import TYPE_CHECKING, Any

from hil.sim.maixpy.modules import module

if TYPE_CHECKING:
    from hil.sim.maixpy.runtime import Runtime


class UnameResult(tuple):
    """MicroPython's attrtuple: prints as (sysname='MaixPy', ...), fields readable by name."""

    _fields = ("sysname", "nodename", "release", "version", "machine")

    def __repr__(self) -> str:
        return "(" + ", ".join(f"{k}={v!r}" for k, v in zip(self._fields, self)) + ")"

    sysname = property(lambda self: self[0])
    nodename = property(lambda self: self[1])
    release = property(lambda self: self[2])
    version = property(lambda self: self[3])
    machine = property(lambda self: self[4])


def release_of(version: str) -> str:
    m = re.match(r"v?(\d+\.\d+\.\d+)", version)
    return m.group(1) if m else version


def build(rt: "Runtime", name: str):
    vfs = rt.vfs
    profile = rt.profile

    def uname() -> UnameResult:
        return UnameResult(("MaixPy", "MaixPy", release_of(profile.version),
                            f"{profile.version} on {profile.build_date}",
                            "Sipeed_M1 with kendryte-k210"))

    def urandom(n: int) -> bytes:
        return host_os.urandom(max(0, int(n)))

    def sync() -> None:
        return None

    def flash_format() -> None:
        with rt.native():
            root = rt.ctx.storage.flashfs_root
            for entry in host_os.scandir(root):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    host_os.unlink(entry.path)

    def listdir(path: Any = "") -> list:
        return vfs.listdir(path)

    def ilistdir(path: Any = ""):
        return vfs.ilistdir(path)

    return module(
        name, uname=uname, urandom=urandom, ilistdir=ilistdir, listdir=listdir,
        mkdir=vfs.mkdir, rmdir=vfs.rmdir, chdir=vfs.chdir, getcwd=vfs.getcwd,
        remove=vfs.remove, rename=vfs.rename, stat=vfs.stat, statvfs=vfs.statvfs,
        sync=sync, flash_format=flash_format, sep="/",
    )
