"""ujson (also ``json``): dumps/loads/dump/load with MicroPython's separators and errors."""
from __future__ import annotations

import json as host
from typing import TYPE_CHECKING, Any

from k210sim.maixpy.modules import module

if TYPE_CHECKING:
    from k210sim.maixpy.runtime import Runtime


def dumps(obj: Any) -> str:
    try:
        return host.dumps(obj, separators=(", ", ": "), ensure_ascii=False)
    except (TypeError, ValueError):
        raise TypeError("can't convert to json") from None


def loads(text: Any) -> Any:
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    try:
        return host.loads(text)
    except (ValueError, TypeError):
        raise ValueError("syntax error in JSON") from None


def dump(obj: Any, stream: Any) -> None:
    stream.write(dumps(obj))


def load(stream: Any) -> Any:
    return loads(stream.read())


def build(rt: "Runtime", name: str):
    return module(name, dumps=dumps, loads=loads, dump=dump, load=load)
