"""uos (and the weak link ``os``): MaixPy's VFS functions over /flash and /sd (k210sim.maixpy.vfs).

The members are moduos.c's table (sipeed/MaixPy-v1@973361c0d components/micropython/port/src/
standard_lib/uos/moduos.c l.187-216): no ``sep``; mount/umount/VfsSpiffs/VfsFat are there but
refuse (EPERM): no other block device is simulated.
"""
from __future__ import annotations

import os as host_os
import re
import shutil
from typing import TYPE_CHECKING, Any

from k210sim.maixpy.modules import module
from k210sim.maixpy.mperrors import EPERM, mp_oserror

if TYPE_CHECKING:
    from k210sim.maixpy.runtime import Runtime


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
    build = rt.build

    def uname() -> UnameResult:
        return UnameResult(("MaixPy", "MaixPy", release_of(build.version),
                            f"{build.version} on {build.build_date}",
                            "Sipeed_M1 with kendryte-k210"))

    def urandom(n: int) -> bytes:
        return host_os.urandom(max(0, int(n)))

    def sync() -> None:
        return None

    def flash_format() -> bool:
        # moduos.c mod_os_flash_format (l.144-183): the three progress lines, then True
        rt.write_text("[MAIXPY]:Spiffs Unmount.\n[MAIXPY]:Spiffs Formating...\n")
        with rt.native():
            root = rt.ctx.storage.flashfs_root
            for entry in host_os.scandir(root):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    host_os.unlink(entry.path)
        rt.write_text("[MAIXPY]:Spiffs Format successful \n[MAIXPY]:Spiffs Mount successful \n")
        return True

    def not_simulated(*args: Any, **kw: Any) -> Any:
        # mount/umount of other block devices: present on the board, not simulated
        raise mp_oserror(EPERM)

    def dupterm(*args: Any) -> None:
        if not 1 <= len(args) <= 2:
            raise TypeError("function expected at most 2 arguments, got %d" % len(args))
        return None

    def set_REPLio(uart: Any) -> None:   # noqa: N802 - MaixPy's name
        return None

    class VfsSpiffs:
        def __init__(self, *args: Any) -> None:
            raise mp_oserror(EPERM)

    class VfsFat:
        def __init__(self, *args: Any) -> None:
            raise mp_oserror(EPERM)

    def listdir(path: Any = "") -> list:
        return vfs.listdir(path)

    def ilistdir(path: Any = ""):
        return vfs.ilistdir(path)

    return module(
        name, uname=uname, urandom=urandom, ilistdir=ilistdir, listdir=listdir,
        mkdir=vfs.mkdir, rmdir=vfs.rmdir, chdir=vfs.chdir, getcwd=vfs.getcwd,
        remove=vfs.remove, rename=vfs.rename, stat=vfs.stat, statvfs=vfs.statvfs,
        sync=sync, flash_format=flash_format, mount=not_simulated, umount=not_simulated,
        dupterm=dupterm, set_REPLio=set_REPLio, VfsSpiffs=VfsSpiffs, VfsFat=VfsFat,
    )
