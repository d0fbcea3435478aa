"""Per-case expectations of a firmware profile: the ``[cases]`` table (rigs/firmware/NAME.toml).

A case is a model fixture of the manifest (fixtures/models/manifest.toml) or one of the calls
the suites make (``CALL_CASES``). What a build does with it defaults to the manifest's
``expect`` (for a call case: the error named below); a build that differs says so here:

    [cases]
    broken_first_layer_not_conv = { outcome = "loads", note = "the SDK loader does not check the first layer" }
    broken_zero_body = { outcome = "error", error = "body_size" }     # an [errors] key
    broken_truncated = { outcome = "error", text = "...", note = "..." }   # or the exact text
    v5_conv_relu = { outcome = "fault", note = "the board crashes; a reset brings it back" }

- ``loads``: the model loads. With a note it is a known weakness of the build (the suites pass
  it and say so: a warning line and a ``known_weakness`` property in the run record).
- ``error``: the load fails with exactly this text (and the code inside it): ``error`` names an
  [errors] key, or ``text`` gives the text itself; exactly one of the two.
- ``fault``: the board crashes or hangs; the suites check that the run is not hung, the
  recovery ladder brings the board back (and say which rung), and a good model still loads.

Checked when the profile is read, each problem one line naming the file and key.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from hil.tomlcheck import Table

OUTCOMES = ("loads", "error", "fault")


class KnownWeakness(UserWarning):
    """A case a build handles worse than a loader should, as its profile says (a pass that says so)."""

# The calls the suites make that are not a fixture: name -> (what it is, the [errors] key a
# MaixPy build answers; "" when the bytes decide it, as for a flash offset).
CALL_CASES: dict[str, tuple[str, str]] = {
    "non_kmodel_path": ("kpu.load of a good model whose file name does not end .kmodel", "path_format"),
    "missing_file": ("kpu.load of a path in the model store that holds no file", "missing_file"),
    "missing_file_flash": ("kpu.load of a /flash path that holds no file", "missing_file"),
    "sd_card_absent": ("kpu.load of an /sd path on a rig without a card", "missing_file"),
    "offset_zero": ("kpu.load(0)", "model_addr"),
    "offset_negative": ("kpu.load(-1)", "model_addr"),
    "offset_erased": ("kpu.load of an erased flash region", ""),
    "offset_inside_firmware": ("kpu.load of an offset inside the firmware image", ""),
}


@dataclass(frozen=True)
class Case:
    """What a build does with one case. ``text`` is the exact error (outcome "error")."""
    name: str
    outcome: str
    error: str = ""          # the [errors] key the text came from, if any
    text: str = ""
    note: str = ""
    declared: bool = True    # False: the manifest's (or the call's) default, not the profile's

    @property
    def loads(self) -> bool:
        return self.outcome == "loads"

    @property
    def known_weakness(self) -> bool:
        """A declared "loads" with a note, or any declared fault: reported as the build's weakness."""
        return self.declared and (self.outcome == "fault" or (self.loads and bool(self.note)))

    def describe(self) -> str:
        if self.outcome == "error":
            return f"the {self.error} error {self.text!r}" if self.error else f"the error {self.text!r}"
        return {"loads": "loads", "fault": "faults (needs a reset)"}[self.outcome]


def parse_cases(table: Table | None, errors: Any, known: Callable[[], Mapping[str, str]]) -> dict[str, Case]:
    """The [cases] table. ``errors``: the profile's ErrorTexts; ``known()``: every case name the
    table may use -> where it comes from (fixture names and CALL_CASES)."""
    if table is None:
        return {}
    names = known()
    cases: dict[str, Case] = {}
    for name in list(table.data):
        if name not in names:
            near = difflib.get_close_matches(name, list(names), n=3)
            raise table.fail(name, "not a model fixture of the manifest nor a call case the suites make"
                                   + (f" (similar: {', '.join(near)})" if near else
                                      f" (call cases: {', '.join(CALL_CASES)})"))
        sub = table.sub(name)
        assert sub is not None
        outcome = sub.take_choice("outcome", OUTCOMES)
        key = sub.take("error", str, "")
        text = sub.take("text", str, "")
        note = sub.take("note", str, "")
        sub.done()
        if outcome == "error":
            if bool(key) == bool(text):
                raise sub.fail("error", 'outcome "error" needs exactly one of error = "<[errors] key>" '
                                        'or text = "<the exact text>"')
            if key:
                if key not in type(errors).__dataclass_fields__:
                    raise sub.fail("error", f"{key!r} is not an [errors] key "
                                            f"(known: {', '.join(type(errors).__dataclass_fields__)})")
                text = getattr(errors, key)
                if not text:
                    raise sub.fail("error", f"errors.{key} is empty in this profile: give its text there, "
                                            f"or the text here (text = \"...\")")
        elif key or text:
            raise sub.fail("error" if key else "text", f'only outcome = "error" takes an error text '
                                                      f'(this case has outcome = "{outcome}")')
        if outcome in ("loads", "fault") and not note:
            raise sub.fail("note", f'outcome = "{outcome}" differs from what the suites expect of a '
                                   f"kmodel loader: say why in a note (it is reported with the result)")
        cases[name] = Case(name, outcome, key, text, note)
    return cases


def default_case(name: str, key: str | None, errors: Any) -> Case:
    """The expectation when the profile says nothing: loads (``key`` None) or the ``key`` error."""
    if key is None:
        return Case(name, "loads", declared=False)
    return Case(name, "error", key, getattr(errors, key), declared=False)
