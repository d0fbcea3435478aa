"""uhashlib.sha256 on the K210's one SHA-256 engine (MaixPy's moduhashlib_maixpy.c).

Sources: sipeed/MaixPy-v1@973361c0d components/micropython/port/src/moduhashlib_maixpy.c
(l.35-90: sha256(), update, digest, calculate_hard; nothing else) and the SDK driver it calls,
sipeed/kendryte-standalone-sdk@7fdb511fe lib/drivers/sha256.c: sha256_init resets the engine
(sysctl_reset(SYSCTL_RESET_SHA)) and sets the block count; every update rewrites the count as
(total + 64 + 8) / 64 into ``sha_data_cnt``, a 16-bit field (lib/drivers/include/sha256.h
l.31-37); whole 64-byte blocks go to the engine's FIFO as they fill; sha256_final feeds the
padding and the bit length and reads the result registers.

Consequences modelled here:
- one engine for every sha256 object: making a second object resets it, and blocks of two
  interleaved objects mix in the engine, so their digests are wrong;
- the count wraps past 65535 blocks: inputs of 4 MiB - 72 bytes or more hash wrong;
- digest() pads again each time it is called, so a second digest (or update after digest) is
  wrong too.
What value the engine gives in those cases is UNCONFIRMED: the simulator returns the SHA-256 of
every byte the engine was fed (padding included), which is deterministic and never the right
digest.
"""
from __future__ import annotations

import hashlib
import struct

BLOCK = 64
COUNT_LIMIT = 0xFFFF


class ShaEngine:
    """The one engine, and the objects (by id) that feed it."""

    def __init__(self) -> None:
        self._objects: dict[int, dict] = {}
        self._next = 1
        self._fed = hashlib.sha256()       # every byte sent to the FIFO since the last reset
        self._owner: int | None = None
        self._clean = True                 # only the owner's message blocks since the reset

    def _reset(self, owner: int) -> None:
        self._fed = hashlib.sha256()
        self._owner = owner
        self._clean = True

    def new(self, data: bytes | None = None) -> int:
        obj_id = self._next
        self._next += 1
        self._objects[obj_id] = {"total": 0, "buffer": b"", "msg": hashlib.sha256(), "finals": 0}
        self._reset(obj_id)
        if data is not None:
            self.update(obj_id, data)
        return obj_id

    def update(self, obj_id: int, data: bytes) -> None:
        obj = self._objects[obj_id]
        obj["total"] += len(data)
        if obj["finals"]:
            self._clean = False
        buf = obj["buffer"] + bytes(data)
        whole = len(buf) - len(buf) % BLOCK
        if whole:
            if self._owner != obj_id:
                self._clean = False
            self._fed.update(buf[:whole])
        obj["buffer"] = buf[whole:]
        if not obj["finals"]:
            obj["msg"].update(data)

    def digest(self, obj_id: int) -> bytes:
        obj = self._objects[obj_id]
        total = obj["total"]
        count = (total + BLOCK + 8) // BLOCK
        pad_len = 120 - len(obj["buffer"])
        if pad_len > 64:
            pad_len -= 64
        padding = b"\x80" + bytes(pad_len - 1) + struct.pack(">Q", (total * 8) & (2**64 - 1))
        right = self._clean and self._owner == obj_id and not obj["finals"] and count <= COUNT_LIMIT
        result = obj["msg"].digest() if right else None
        obj["finals"] += 1
        self.update(obj_id, padding)
        obj["total"] -= len(padding)        # sha256_final's own total_len is not the object's
        return result if result is not None else self._fed.copy().digest()

    def forget(self, obj_id: int) -> None:
        self._objects.pop(obj_id, None)

    def hard(self, data: bytes) -> bytes:
        """sha256_hard_calculate: a fresh init/update/final on the engine."""
        obj = self.new(None)
        obj_data = self._objects[obj]
        obj_data["total"] = 0
        self.update(obj, data)
        out = self.digest(obj)
        self.forget(obj)
        return out
