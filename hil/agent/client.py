"""A client for the k210-hil agent in C-SDK firmware, over any byte stream (a ``hil.link.Link``).

Every method sends one request (or, for transfers, a sequence) and waits for the answer with its
own seq, with a timeout. Lines that are not the agent's (the firmware's own printf output) are
kept in ``chatter`` for logs. Requests the agent did not run (their line arrived garbled: BAD_CRC,
FRAMING, TOO_LONG, TIMEOUT) are sent again; requests that change nothing on the board (HELLO,
MEM, STAT, READ, ...) are also sent again after a timeout or a garbled answer. A LOAD whose answer
never came is not repeated: what the board did is unknown, and the error says so.

Loaded models are tracked by id; a BOOT line (the firmware restarted) clears them and is passed
to ``on_boot`` (the device flavour tells the board's lifecycle), and a BOOT arriving while a
request waits raises ``AgentRebooted``.
"""
from __future__ import annotations

import base64
import hashlib
import time
from collections import deque
from typing import Callable, Protocol

from hil.agent import protocol as P
from hil.agent.errors import (LOAD_CODES, NO_MEM, AgentCommandError, AgentError, AgentFileNotFound,
                              AgentLinkError, AgentRebooted, AgentTimeout, KpuLoadError,
                              MemoryOverflow, TransferError)
from hil.agent.records import AgentMemory, FileStat, Hello, LoadedModel

RESENT_CODES = {1001, 1002, 1003, 1017}   # the agent could not read the line: it ran nothing
NOT_FOUND = 1012
SHA_MISMATCH = 1008
OFFSET = 1007
IDEMPOTENT = frozenset({"HELLO", "MEM", "STAT", "READ", "LS", "FSHA", "FREAD", "DATA", "ABORT", "TRUNC"})
SLOW_VERBS = frozenset({"LOAD", "STAT", "END", "FSHA", "PUT", "TRUNC"})   # read, hash or allocate megabytes


class Stream(Protocol):
    def read(self, n: int = 4096, timeout: float = 1.0) -> bytes: ...
    def write(self, data: bytes) -> None: ...


class AgentClient:
    """The agent protocol over ``stream``. ``name`` (rig or port) starts every error message."""

    def __init__(self, stream: Stream, name: str = "agent", timeout: float = 10.0, retries: int = 3,
                 note: Callable[[str], None] | None = None, slow_timeout: float = 120.0,
                 on_boot: Callable[[P.Answer], None] | None = None) -> None:
        self.stream = stream
        self.name = name
        self.timeout = timeout
        self.slow_timeout = max(slow_timeout, timeout)   # for SLOW_VERBS
        self.retries = retries
        self.note = note or (lambda _text: None)
        self.on_boot = on_boot or (lambda _ans: None)
        self.chatter: deque[bytes] = deque(maxlen=200)
        self.boots = 0                      # BOOT lines seen
        self.last_boot: P.Answer | None = None
        self.models: dict[int, LoadedModel] = {}
        self._seq = 0
        self._buf = b""
        self._events: deque[P.Answer] = deque()

    # -- lines ---------------------------------------------------------------------------------
    def _next_seq(self) -> int:
        self._seq = self._seq % P.SEQ_MAX + 1
        return self._seq

    def _line(self, deadline: float) -> bytes | None:
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._buf += self.stream.read(4096, left)
        line, _, self._buf = self._buf.partition(b"\n")
        return line.rstrip(b"\r")

    def _booted(self, ans: P.Answer) -> None:
        self.boots += 1
        self.last_boot = ans
        self.models.clear()
        self.note(f"{self.name}: firmware (re)booted: {ans.status}")
        self.on_boot(ans)

    def forget_input(self) -> None:
        """Drop bytes read but not yet taken (the link was reopened: they belong to the old one)."""
        self._buf = b""

    def send(self, verb: str, *args: object) -> int:
        """Write one request without waiting for its answer (a REBOOT the reset may cut off);
        its seq."""
        seq = self._next_seq()
        self.stream.write(P.encode_request(seq, verb, *args))
        return seq

    def any_bytes(self, timeout: float) -> bool:
        """Whether the firmware sends anything within ``timeout`` (kept for the next read)."""
        if self._buf:
            return True
        self._buf += self.stream.read(4096, timeout)
        return bool(self._buf)

    def await_boot(self, since: int, timeout: float) -> P.Answer | None:
        """The BOOT line after ``since`` BOOT lines were seen (None: none within ``timeout``).
        Other lines meanwhile are chatter or answers nobody waits for any more."""
        deadline = time.monotonic() + timeout
        while self.boots <= since:
            line = self._line(deadline)
            if line is None:
                return None
            if P.is_framed(line):
                try:
                    ans = P.parse_answer(line)
                except P.FrameError:
                    continue
                if ans.kind == "BOOT" and ans.seq is None:
                    self._booted(ans)
            elif line:
                self.chatter.append(line)
        return self.last_boot

    def _wait(self, seq: int, deadline: float, what: str) -> P.Answer | None:
        """The answer to ``seq``; None on timeout. Raises AgentRebooted on a BOOT line."""
        while True:
            line = self._line(deadline)
            if line is None:
                return None
            if not P.is_framed(line):
                if line:
                    self.chatter.append(line)
                continue
            try:
                ans = P.parse_answer(line)
            except P.FrameError as exc:
                self.note(f"{self.name}: garbled answer to {what}: {exc}")
                raise _Garbled() from None
            if ans.kind == "BOOT" and ans.seq is None:
                self._booted(ans)
                raise AgentRebooted(f"{self.name}: the firmware rebooted while {what} waited "
                                    f"for its answer ({ans.status})")
            if ans.seq == seq:
                return ans
            if ans.seq is None and ans.kind == "ERR" and ans.code in RESENT_CODES:
                return ans      # the only sender is us: this was our line, unreadable
            # an answer to an earlier request whose wait timed out: not ours

    def drain_events(self, quiet: float = 0.2) -> None:
        """Read what the firmware printed until it is quiet (boot lines are noted)."""
        deadline = time.monotonic() + quiet
        while (line := self._line(deadline)) is not None:
            if P.is_framed(line):
                try:
                    ans = P.parse_answer(line)
                except P.FrameError:
                    continue
                if ans.kind == "BOOT":
                    self._booted(ans)
            elif line:
                self.chatter.append(line)
            deadline = time.monotonic() + quiet

    # -- requests ------------------------------------------------------------------------------
    def exchange(self, verb: str, *args: object, timeout: float | None = None,
                 tries: int | None = None) -> P.Answer:
        """Send one request and return its answer (OK or ERR), resending what the agent could
        not read. Infrastructure errors (timeout, garbled past the retries, reboot) raise."""
        what = " ".join([verb, *(str(a) for a in args)])
        limit = timeout if timeout is not None else self.slow_timeout if verb in SLOW_VERBS else self.timeout
        tries = tries if tries is not None else self.retries + 1
        last = "no answer"
        for _ in range(tries):
            seq = self._next_seq()
            self.stream.write(P.encode_request(seq, verb, *args))
            try:
                ans = self._wait(seq, time.monotonic() + limit, what)
            except _Garbled:
                if verb not in IDEMPOTENT:
                    raise AgentLinkError(f"{self.name}: the answer to {what} arrived garbled; whether "
                                         f"it ran is unknown") from None
                last = "a garbled answer"
                continue
            if ans is None:
                if verb not in IDEMPOTENT:
                    raise AgentTimeout(f"{self.name}: no answer to {what} within {limit:g} s "
                                       f"(firmware hung or link down)")
                last = f"no answer within {limit:g} s"
                continue
            if ans.kind == "ERR" and ans.code in RESENT_CODES:
                last = ans.status
                self.note(f"{self.name}: {what}: {ans.status}; sending it again")
                continue
            return ans
        raise AgentLinkError(f"{self.name}: {what}: {last} after {tries} tries")

    def request(self, verb: str, *args: object, timeout: float | None = None) -> P.Answer:
        """``exchange``, with ERR answers raised as typed errors."""
        ans = self.exchange(verb, *args, timeout=timeout)
        if ans.ok:
            return ans
        raise self.error(" ".join([verb, *(str(a) for a in args)]), ans)

    def error(self, what: str, ans: P.Answer, model: str = "") -> Exception:
        if ans.code in LOAD_CODES:
            cls = MemoryOverflow if ans.code == NO_MEM else KpuLoadError
            return cls(ans.status, ans.code, ans.name, model or what)
        if ans.code == SHA_MISMATCH:
            return TransferError(f"{self.name}: {what}: {ans.status}")
        cls2 = AgentFileNotFound if ans.code == NOT_FOUND else AgentCommandError
        if ans.code < 1004:
            cls2 = AgentError
        return cls2(self.name, what, ans.code, ans.name, ans.text, ans.status)

    # -- commands ------------------------------------------------------------------------------
    def wait_ready(self, timeout: float) -> Hello:
        """HELLO until the firmware answers (it may still be booting, or just rebooted)."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AgentTimeout(f"{self.name}: the agent did not answer HELLO within {timeout:g} s ({last})")
            try:
                return self._hello(self.exchange("HELLO", timeout=min(0.5, left), tries=1))
            except AgentLinkError as exc:       # timeouts, a boot line, garbled answers
                last = str(exc)

    def hello(self) -> Hello:
        return self._hello(self.request("HELLO"))

    def hello_within(self, timeout: float) -> Hello:
        """One HELLO, no retries: AgentLinkError when no good answer came within ``timeout``."""
        return self._hello(self.exchange("HELLO", timeout=timeout, tries=1))

    def _hello(self, a: P.Answer) -> Hello:
        if not a.ok:
            raise self.error("HELLO", a)
        return Hello(agent=a.str("agent"), proto=a.int("proto"), board=a.str("board"),
                     build=a.str("build"), heap_total=a.int("heap_total"), heap_free=a.int("heap_free"),
                     line_max=a.int("line_max"), chunk_max=a.int("chunk_max"),
                     kmodel_versions=tuple(int(v) for v in a.str("kmodel").split(",") if v),
                     max_models=a.int("max_models"), flash_size=a.int("flash_size"),
                     files=a.int("files") == 1)

    def memory(self) -> AgentMemory:
        a = self.request("MEM")
        return AgentMemory(a.int("heap_total"), a.int("heap_free"), a.int("models"), a.int("model_bytes"))

    def _loaded(self, a: P.Answer, source: str) -> LoadedModel:
        m = LoadedModel(a.int("id"), source, a.int("version"), a.int("size"), a.int("main_mem"),
                        a.int("heap_free"))
        self.models[m.id] = m
        return m

    def load_file(self, path: str, timeout: float | None = None) -> LoadedModel:
        ans = self.exchange("LOAD", "FILE", path, timeout=timeout)
        if not ans.ok:
            raise self.error(f"LOAD FILE {path}", ans, path)
        return self._loaded(ans, path)

    def load_flash(self, offset: int, size: int | None = None, timeout: float | None = None) -> LoadedModel:
        args: list[object] = ["FLASH", offset] + ([size] if size is not None else [])
        source = f"{offset:#x}" if offset >= 0 else str(offset)
        ans = self.exchange("LOAD", *args, timeout=timeout)
        if not ans.ok:
            raise self.error(f"LOAD FLASH {source}", ans, source)
        return self._loaded(ans, source)

    def deinit(self, model: LoadedModel | int) -> int:
        """Free one model; returns the free heap after."""
        mid = model.id if isinstance(model, LoadedModel) else int(model)
        a = self.request("DEINIT", mid)
        self.models.pop(mid, None)
        return a.int("heap_free")

    def deinit_all(self) -> int:
        """Free every model the firmware holds (also ones this client did not load); how many."""
        a = self.request("DEINIT", "ALL")
        self.models.clear()
        return a.int("freed")

    def reboot(self, timeout: float = 30.0) -> P.Answer:
        """REBOOT, then wait for the BOOT line; returns it."""
        boots = self.boots
        try:
            self.request("REBOOT")
        except AgentRebooted:               # the reset cut the answer off: the BOOT line is here
            pass
        ans = self.await_boot(boots, timeout)
        if ans is None:
            raise AgentTimeout(f"{self.name}: no BOOT line within {timeout:g} s after REBOOT")
        return ans

    # -- files and flash -----------------------------------------------------------------------
    def _send(self, begin: tuple[object, ...], data: bytes, what: str) -> str:
        sha = hashlib.sha256(data).hexdigest()
        self.request(*begin, len(data), sha)            # type: ignore[arg-type]
        off = 0
        while off < len(data):
            chunk = data[off:off + P.CHUNK_MAX]
            ans = self.exchange("DATA", off, base64.b64encode(chunk).decode("ascii"))
            if ans.ok:
                off = ans.int("next")
            elif ans.code == OFFSET and "next" in ans.fields:
                self.note(f"{self.name}: {what}: agent expects offset {ans.fields['next']}, resuming")
                off = ans.int("next")
            else:
                self.exchange("ABORT")
                raise self.error(f"{what} (DATA at {off})", ans)
        ans = self.exchange("END")
        if not ans.ok:
            raise self.error(f"{what} (END)", ans)
        if ans.str("sha256") != sha:
            raise TransferError(f"{self.name}: {what}: the agent committed sha256 {ans.str('sha256')[:16]}..., "
                                f"sent {sha[:16]}...")
        return sha

    def put(self, path: str, data: bytes) -> str:
        """Write a file on the board; returns the sha256 the agent verified."""
        return self._send(("PUT", path), data, f"PUT {path}")

    def flash_write(self, offset: int, data: bytes) -> str:
        """Write ``data`` to flash at ``offset``; the agent reads it back and checks the sha256."""
        return self._send(("FPUT", offset), data, f"FPUT {offset:#x}")

    def stat(self, path: str) -> FileStat:
        a = self.request("STAT", path)
        return FileStat(a.int("size"), a.str("sha256"))

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except AgentFileNotFound:
            return False
        return True

    def _fetch(self, verb: str, prefix: tuple[object, ...], base: int, size: int, what: str) -> bytes:
        parts, got = [], 0
        while got < size:
            a = self.request(verb, *prefix, base + got, min(P.CHUNK_MAX, size - got))
            chunk = base64.b64decode(a.str("data"), validate=True)
            if a.int("offset") != base + got or len(chunk) != a.int("count") or not chunk:
                raise AgentLinkError(f"{self.name}: {what}: answer for offset {a.fields.get('offset')} "
                                     f"with {len(chunk)} bytes, asked for offset {base + got}")
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    def get(self, path: str) -> bytes:
        """A file's bytes, checked against the sha256 the agent computes."""
        st = self.stat(path)
        data = self._fetch("READ", (path,), 0, st.size, f"READ {path}")
        if hashlib.sha256(data).hexdigest() != st.sha256:
            raise TransferError(f"{self.name}: GET {path}: received bytes do not match the board's sha256")
        return data

    def remove(self, path: str, missing_ok: bool = False) -> None:
        try:
            self.request("RM", path)
        except AgentFileNotFound:
            if not missing_ok:
                raise

    def truncate(self, path: str, size: int) -> None:
        """Set a file's size (bytes past the old end: zeros on the reference firmware, whatever
        the file system leaves on others)."""
        self.request("TRUNC", path, size)

    def listdir(self) -> dict[str, int]:
        """Every file the firmware's store lists: path -> size."""
        out: dict[str, int] = {}
        for index in range(100_000):
            a = self.request("LS", index)
            if a.fields.get("end") == "1":
                return out
            out[a.str("path")] = a.int("size")
        raise AgentLinkError(f"{self.name}: LS did not end after 100000 entries")

    def flash_sha256(self, offset: int, size: int) -> str:
        return self.request("FSHA", offset, size).str("sha256")

    def flash_read(self, offset: int, size: int) -> bytes:
        """``size`` bytes of flash at ``offset`` (fewer past the end of flash: an error)."""
        return self._fetch("FREAD", (), offset, size, f"FREAD {offset:#x}")


class _Garbled(Exception):
    """An answer line failed its CRC: internal to exchange()."""
