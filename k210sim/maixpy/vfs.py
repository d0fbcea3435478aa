"""The board's filesystem: /flash and /sd mapped onto host directories, strictly confined.

MicroPython's VFS (extmod/vfs.c) has a virtual root "/" listing the mount points ("flash", then
"sd"), and each mount is a filesystem of its own. Here each mount is a host directory
(``storage.flashfs_root``, ``storage.sd_root``). Every board path is normalised as a board path
first ("." and ".." resolved against the board's cwd, never above "/"), mapped into its mount's
host directory, and the resolved host path (symlinks followed) must stay inside that directory:
anything else, and every host-side failure, becomes the OSError the board would raise
(MicroPython FAT semantics, vfs_fat.c: ENOENT, EEXIST, EISDIR, ENOTDIR=20 (printed as a bare
number: MicroPython has no name for it), EACCES for rmdir of a non-empty directory). No host path
or host error text is ever returned to user code.

/sd is mounted at boot when a card is present (as maixpy_main.c does); pulled out afterwards,
its files fail with EIO until the next reset; inserted after boot, it is not seen until then.
Both mounts use FAT semantics (the real /flash is SPIFFS; its size limit is not modelled).
"""
from __future__ import annotations

import errno as host_errno
import os
import posixpath
import weakref
import stat as host_stat
from pathlib import Path
from typing import Any, Callable, Iterator

from k210sim.firmware import spiffs
from k210sim.maixpy.mperrors import EACCES, EBADF, EEXIST, EINVAL, EIO, EISDIR, ENOENT, ENOTDIR, \
    mp_oserror

MP_EPOCH_OFFSET = 946684800          # MicroPython's time epoch is 2000-01-01
S_IFDIR, S_IFREG = 0x4000, 0x8000
SD_CARD_SIZE = 8 * 1024 ** 3         # what statvfs("/sd") reports: an 8 GB card
_TOKEN = object()                    # only this module can construct file objects


class Vfs:
    def __init__(self, flash_root: Path, sd_root: Path | None, sd_present: Callable[[], bool],
                 native: Callable[[], Any], note_garbage: Callable[[int], None]) -> None:
        self._mounts: list[tuple[str, Path]] = [("flash", Path(flash_root))]
        if sd_root is not None:
            self._mounts.append(("sd", Path(sd_root)))
        self._sd_present = sd_present
        self.native = native
        self._note = note_garbage
        self.cwd = "/"
        # weak: a file nobody references is closed by the GC, as MicroPython's finaliser does
        self.open_files: "weakref.WeakSet[MpFile]" = weakref.WeakSet()

    # -- paths -----------------------------------------------------------------------------
    @property
    def mount_names(self) -> list[str]:
        return [name for name, _ in self._mounts]

    def board_path(self, path: Any) -> str:
        if isinstance(path, bytes):
            path = path.decode("utf-8", "replace")
        if not isinstance(path, str):
            raise TypeError("can't convert '%s' object to str implicitly" % type(path).__name__)
        if "\0" in path:
            raise mp_oserror(ENOENT)
        full = path if path.startswith("/") else posixpath.join(self.cwd, path)
        norm = posixpath.normpath(full)
        if norm.startswith("//"):
            norm = "/" + norm.lstrip("/")
        return norm

    def resolve(self, path: Any) -> tuple[str, Path | None, Path | None]:
        """(board path, mount root, host path); host path None for the virtual root "/"."""
        bpath = self.board_path(path)
        if bpath == "/":
            return bpath, None, None
        parts = bpath.strip("/").split("/")
        for name, root in self._mounts:
            if parts[0] == name:
                if name == "sd" and not self._sd_present():
                    raise mp_oserror(EIO)
                host = root.joinpath(*parts[1:]) if len(parts) > 1 else root
                self._confine(root, host)
                return bpath, root, host
        raise mp_oserror(ENOENT)

    @staticmethod
    def _confine(root: Path, host: Path) -> None:
        try:
            real_root = root.resolve()
            real = host.resolve()
        except (OSError, RuntimeError):
            raise mp_oserror(ENOENT) from None
        if real != real_root and real_root not in real.parents:
            raise mp_oserror(ENOENT)

    # -- directory operations ----------------------------------------------------------------
    def listdir(self, path: Any = "") -> list[str]:
        return [entry[0] for entry in self.ilistdir(path)]

    def ilistdir(self, path: Any = "") -> Iterator[tuple]:
        with self.native():
            bpath, root, host = self.resolve(path if path != "" else self.cwd)
            if host is None:
                return iter([(name, S_IFDIR, 0) for name in self.mount_names])
            if not host.is_dir():
                raise mp_oserror(ENOENT)
            out = []
            try:
                for entry in sorted(os.scandir(host), key=lambda e: e.name):
                    try:
                        st = entry.stat()
                    except OSError:
                        continue
                    is_dir = host_stat.S_ISDIR(st.st_mode)
                    out.append((entry.name, S_IFDIR if is_dir else S_IFREG, 0,
                                0 if is_dir else st.st_size))
            except OSError:
                raise mp_oserror(EIO) from None
            return iter(out)

    def stat(self, path: Any) -> tuple:
        with self.native():
            bpath, root, host = self.resolve(path)
            if host is None:
                return (S_IFDIR, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            try:
                st = host.stat()
            except OSError:
                raise mp_oserror(ENOENT) from None
            mtime = max(int(st.st_mtime) - MP_EPOCH_OFFSET, 0)
            if host_stat.S_ISDIR(st.st_mode):
                return (S_IFDIR, 0, 0, 0, 0, 0, 0, mtime, mtime, mtime)
            return (S_IFREG, 0, 0, 0, 0, 0, st.st_size, mtime, mtime, mtime)

    def mkdir(self, path: Any) -> None:
        with self.native():
            bpath, root, host = self.resolve(path)
            if host is None or host == root or host.exists():
                raise mp_oserror(EEXIST)
            if not host.parent.is_dir():
                raise mp_oserror(ENOENT)
            try:
                host.mkdir()
            except OSError:
                raise mp_oserror(EIO) from None

    def rmdir(self, path: Any) -> None:
        with self.native():
            bpath, root, host = self.resolve(path)
            if host is None or host == root:
                raise mp_oserror(EACCES)
            if not host.exists():
                raise mp_oserror(ENOENT)
            if not host.is_dir():
                raise mp_oserror(ENOTDIR)
            if any(host.iterdir()):
                raise mp_oserror(EACCES)
            try:
                host.rmdir()
            except OSError:
                raise mp_oserror(EIO) from None

    def remove(self, path: Any) -> None:
        with self.native():
            bpath, root, host = self.resolve(path)
            if host is None or host == root:
                raise mp_oserror(EISDIR)
            if not host.exists() and not host.is_symlink():
                raise mp_oserror(ENOENT)
            if host.is_dir():
                raise mp_oserror(EISDIR)
            try:
                host.unlink()
            except OSError:
                raise mp_oserror(EIO) from None

    def rename(self, old: Any, new: Any) -> None:
        with self.native():
            _, root_a, src = self.resolve(old)
            _, root_b, dst = self.resolve(new)
            if src is None or dst is None or src == root_a or dst == root_b:
                raise mp_oserror(EINVAL)
            if root_a != root_b:
                raise mp_oserror(EINVAL)       # no rename across filesystems (mp_vfs_rename)
            if not src.exists():
                raise mp_oserror(ENOENT)
            if dst.exists():
                raise mp_oserror(EEXIST)
            try:
                src.rename(dst)
            except OSError:
                raise mp_oserror(EIO) from None

    def chdir(self, path: Any) -> None:
        with self.native():
            bpath, root, host = self.resolve(path)
            if host is not None and not host.is_dir():
                raise mp_oserror(ENOENT)
            self.cwd = bpath

    def getcwd(self) -> str:
        return self.cwd

    def statvfs(self, path: Any) -> tuple:
        with self.native():
            bpath, root, host = self.resolve(path)
            if host is None or root is None:
                return (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            sizes = []
            for dirpath, _dirs, files in os.walk(root):
                for f in files:
                    try:
                        sizes.append(os.lstat(os.path.join(dirpath, f)).st_size)
                    except OSError:
                        pass
            if root == self._mounts[0][1]:
                return spiffs.statvfs(sizes)
            size, bsize = SD_CARD_SIZE, 32768
            used = sum(sizes)
            blocks = size // bsize
            free = max(blocks - (used + bsize - 1) // bsize, 0)
            return (bsize, bsize, blocks, free, free, 0, 0, 0, 0, 255)

    def read_whole(self, path: str) -> bytes | None:
        """A whole file as the firmware's C code reads it (vfs_internal_open/size/read), or None
        when it cannot be opened (missing file, a directory, no card, a path outside a mount)."""
        try:
            _, _, host = self.resolve(path)
            if host is None or not host.is_file():
                return None
            return host.read_bytes()
        except (OSError, TypeError, ValueError):
            return None

    def write_whole(self, path: str, data: bytes) -> bool:
        try:
            _, _, host = self.resolve(path)
            if host is None or host.is_dir():
                return False
            host.write_bytes(data)
            return True
        except (OSError, TypeError, ValueError):
            return False

    def exists_file(self, path: str) -> bool:
        try:
            _, _, host = self.resolve(path)
        except OSError:
            return False
        return host is not None and host.is_file()

    # -- files -----------------------------------------------------------------------------
    def open(self, path: Any, mode: str = "r", *args: Any, **kw: Any) -> "MpFile":
        if not isinstance(mode, str) or not mode or any(ch not in "rwaxbt+" for ch in mode):
            raise ValueError("invalid mode")
        with self.native():
            bpath, root, host = self.resolve(path)
            if host is None or host.is_dir():
                # fatfs f_open on a directory: FR_NO_FILE for reading; writing over it is refused
                raise mp_oserror(ENOENT if "r" in mode and "+" not in mode else EISDIR)
            kind = mode.replace("b", "").replace("t", "")
            base = {"r": "rb", "w": "wb", "a": "ab", "x": "xb", "r+": "r+b", "w+": "w+b",
                    "a+": "a+b", "x+": "x+b", "+r": "r+b", "+w": "w+b", "+a": "a+b"}.get(kind)
            if base is None:
                raise ValueError("invalid mode")
            if base[0] == "r" and not host.is_file():
                raise mp_oserror(ENOENT)
            if base[0] in "wax" and not host.parent.is_dir():
                raise mp_oserror(ENOENT)
            if base[0] == "x" and host.exists():
                raise mp_oserror(EEXIST)
            try:
                fh = open(host, base)
            except OSError as exc:
                raise _host_error(exc) from None
            f = MpFile(_TOKEN, self, fh, "b" in mode, bpath)
            self.open_files.add(f)
            return f

    def close_all(self) -> None:
        for f in list(self.open_files):
            f._close_quiet()


def _host_error(exc: OSError) -> OSError:
    code = {host_errno.ENOENT: ENOENT, host_errno.EEXIST: EEXIST, host_errno.EISDIR: EISDIR,
            host_errno.ENOTDIR: ENOENT, host_errno.EACCES: EACCES}.get(exc.errno or 0, EIO)
    return mp_oserror(code)


class MpFile:
    """A file open on the board (io.FileIO in binary mode, io.TextIOWrapper in text mode)."""

    __slots__ = ("_vfs", "_fh", "_binary", "_path", "__weakref__")

    def __init__(self, token: object, vfs: Vfs, fh: Any, binary: bool, path: str) -> None:
        if token is not _TOKEN:
            raise TypeError("cannot create instances")
        self._vfs = vfs
        self._fh = fh
        self._binary = binary
        self._path = path

    def __init_subclass__(cls, **kw: Any) -> None:
        raise TypeError("type is not an acceptable base type")

    def __repr__(self) -> str:
        kind = "FileIO" if self._binary else "TextIOWrapper"
        return "<io.%s %x>" % (kind, (id(self) >> 4) & 0xFFFFFFF)

    def _check(self) -> Any:
        if self._fh is None:
            raise mp_oserror(EBADF)
        return self._fh

    def _out(self, data: bytes) -> Any:
        self._vfs._note(len(data))
        return data if self._binary else data.decode("utf-8", "replace")

    def read(self, size: int = -1) -> Any:
        with self._vfs.native():
            fh = self._check()
            try:
                data = fh.read() if size is None or size < 0 else _read_full(fh, size)
            except OSError:
                raise mp_oserror(EIO) from None
        return self._out(data)

    def readinto(self, buf: Any, size: int = -1) -> int:
        with self._vfs.native():
            fh = self._check()
            view = memoryview(buf).cast("B")
            if size is not None and size >= 0:
                view = view[:size]
            got = 0
            try:
                while got < len(view):
                    n = fh.readinto(view[got:])
                    if not n:
                        break
                    got += n
            except OSError:
                raise mp_oserror(EIO) from None
            return got

    def readline(self, size: int = -1) -> Any:
        with self._vfs.native():
            fh = self._check()
            out = bytearray()
            while size is None or size < 0 or len(out) < size:
                b = fh.read(1)
                if not b:
                    break
                out += b
                if b == b"\n":
                    break
        return self._out(bytes(out))

    def readlines(self) -> list:
        lines = []
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)

    def __iter__(self) -> "MpFile":
        return self

    def __next__(self) -> Any:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def write(self, data: Any) -> int:
        if isinstance(data, str):
            payload = data.encode("utf-8")
        else:
            try:
                payload = bytes(memoryview(data))
            except TypeError:
                raise TypeError("object with buffer protocol required") from None
        with self._vfs.native():
            fh = self._check()
            try:
                fh.write(payload)
            except OSError:
                raise mp_oserror(EIO) from None
        return len(payload)

    def seek(self, offset: int, whence: int = 0) -> int:
        with self._vfs.native():
            fh = self._check()
            try:
                return fh.seek(offset, whence)
            except (OSError, ValueError):
                raise mp_oserror(EINVAL) from None

    def tell(self) -> int:
        with self._vfs.native():
            return self._check().tell()

    def flush(self) -> None:
        with self._vfs.native():
            try:
                self._check().flush()
            except OSError:
                raise mp_oserror(EIO) from None

    def close(self) -> None:
        with self._vfs.native():
            self._close_quiet()

    def _close_quiet(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            try:
                fh.close()
            except OSError:
                pass
        self._vfs.open_files.discard(self)

    def __enter__(self) -> "MpFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _read_full(fh: Any, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        chunk = fh.read(size - len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)
