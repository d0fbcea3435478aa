"""Allure metadata for a run: environment.properties, categories.json, and an Allure 3 config.

The pytest plugin calls ``write_allure_metadata(...)`` once per worker at session finish (when
the firmware version read from the board is known); the allure-pytest plugin itself writes the
test results and the plugin attaches each test's serial log and measurements.

Categories: allure-pytest marks any non-assertion exception "broken"; our infrastructure errors
(every subclass of hil.errors.InfrastructureError, listed from the class tree so the list never
goes stale) get their own category, so a loose cable is never filed with firmware defects.
Firmware errors raised on the device (KpuLoadError, MemoryOverflow, ReplError) are product defects
even when allure calls them broken. Regexes use ``[\\s\\S]*`` rather than ``.*`` so they work the
same in Allure 2 (Java, whole-string match) and Allure 3 (JavaScript, partial match).

Several workers may write into one allure-results directory: environment values are merged
(different values joined with ", ") under an exclusive lock, and every file is replaced atomically.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterator

import hil.errors as errors
from hil.report.files import write_atomic

ENVIRONMENT_FILE = "environment.properties"
CATEGORIES_FILE = "categories.json"
# environment.properties keys, in the order Allure shows them.
ENV_KEYS = ("rig", "board", "firmware", "firmware_version", "hil_version", "host")
FIRMWARE_ERRORS = ("KpuLoadError", "MemoryOverflow", "ReplError", "KModelFormatError")


def infrastructure_error_names() -> list[str]:
    """Class names of every infrastructure error in hil.errors (the class and its subclasses)."""
    names: list[str] = []
    todo = [errors.InfrastructureError]
    while todo:
        cls = todo.pop(0)
        if cls.__name__ not in names:
            names.append(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


def _any_of(names: list[str] | tuple[str, ...]) -> str:
    return r"[\s\S]*\b(" + "|".join(names) + r")\b[\s\S]*"


def categories() -> list[dict]:
    """The categories, first match wins."""
    return [
        {"name": "Infrastructure: rig, link, power or boot (not the firmware)",
         "matchedStatuses": ["broken", "failed"],
         "messageRegex": _any_of(infrastructure_error_names())},
        {"name": "Firmware errors raised on the device",
         "matchedStatuses": ["broken", "failed"],
         "messageRegex": _any_of(FIRMWARE_ERRORS)},
        {"name": "Firmware regressions (assertions)",
         "matchedStatuses": ["failed"]},
        {"name": "Broken tests (test or framework bugs)",
         "matchedStatuses": ["broken"]},
    ]


def _escape(text: str, key: bool = False) -> str:
    """Java .properties escaping (ISO-8859-1 safe: other characters as \\uXXXX)."""
    out = []
    for i, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch in "=:#!" or (ch == " " and (key or i == 0)):
            out.append("\\" + ch)
        elif ord(ch) > 0x7E or ord(ch) < 0x20:
            out.extend(f"\\u{c:04x}" for c in _utf16(ch))
        else:
            out.append(ch)
    return "".join(out)


def _utf16(ch: str) -> list[int]:
    data = ch.encode("utf-16-be")
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "u" and i + 6 <= len(text):
                try:
                    out.append(chr(int(text[i + 2:i + 6], 16)))
                    i += 6
                    continue
                except ValueError:
                    pass
            out.append({"n": "\n", "r": "\r", "t": "\t"}.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    # Re-join surrogate pairs written as two \uXXXX escapes.
    return "".join(out).encode("utf-16", "surrogatepass").decode("utf-16")


def read_environment(path: Path) -> dict[str, str]:
    """Parse an environment.properties this module (or anyone simple) wrote."""
    env: dict[str, str] = {}
    for raw in path.read_text(encoding="latin-1").splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        i, n = 0, len(line)
        while i < n and not (line[i] in "=:" and (i == 0 or line[i - 1] != "\\")):
            i += 1
        key, value = line[:i].strip(), line[i + 1:].strip() if i < n else ""
        env[_unescape(key)] = _unescape(value)
    return env


def format_environment(env: dict[str, str]) -> str:
    ordered = [k for k in ENV_KEYS if k in env] + sorted(k for k in env if k not in ENV_KEYS)
    return "".join(f"{_escape(k, key=True)}={_escape(env[k])}\n" for k in ordered)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock on directory/.hil-allure.lock (POSIX); no lock where fcntl is missing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(directory / ".hil-allure.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _merge(old: str | None, new: str) -> str:
    if not old or old == new:
        return new
    parts = [p.strip() for p in old.split(",")]
    return old if new in parts else f"{old}, {new}"


def write_environment(results_dir: str | Path, *, rig: str, board: str, firmware: str,
                      firmware_version: str, hil_version: str, host: str,
                      extra: dict[str, str] | None = None) -> Path:
    """Write (or merge into) results_dir/environment.properties; returns its path."""
    d = Path(results_dir)
    d.mkdir(parents=True, exist_ok=True)
    values = {"rig": rig, "board": board, "firmware": firmware,
              "firmware_version": firmware_version, "hil_version": hil_version, "host": host}
    values.update(extra or {})
    path = d / ENVIRONMENT_FILE
    with _locked(d):
        env = read_environment(path) if path.exists() else {}
        for k, v in values.items():
            env[k] = _merge(env.get(k), str(v))
        write_atomic(path, format_environment(env))
    return path


def write_categories(results_dir: str | Path) -> Path:
    d = Path(results_dir)
    d.mkdir(parents=True, exist_ok=True)
    path = d / CATEGORIES_FILE
    write_atomic(path, json.dumps(categories(), indent=1) + "\n")
    return path


def write_allure_metadata(results_dir: str | Path, *, rig: str, board: str, firmware: str,
                          firmware_version: str, hil_version: str, host: str,
                          extra: dict[str, str] | None = None) -> None:
    """What the plugin calls: environment.properties (merged) and categories.json."""
    write_environment(results_dir, rig=rig, board=board, firmware=firmware,
                      firmware_version=firmware_version, hil_version=hil_version, host=host,
                      extra=extra)
    write_categories(results_dir)


def allure3_config(name: str = "K210 HIL", single_file: bool = True) -> dict:
    """An Allure 3 config (allurerc.json): Allure 3's default report reads categories from its
    config, not from categories.json, so the same categories are given here."""
    return {"name": name, "output": "allure-report", "categories": categories(),
            "plugins": {"awesome": {"options": {"singleFile": single_file,
                                                "reportName": name}}}}


def write_allure3_config(path: str | Path, name: str = "K210 HIL", single_file: bool = True) -> Path:
    p = Path(path)
    write_atomic(p, json.dumps(allure3_config(name, single_file), indent=1) + "\n")
    return p
