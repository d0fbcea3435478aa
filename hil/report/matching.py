"""Which rig of one run is compared with which rig of another: what a person means.

Someone comparing two runs means "the same board running the same kind of firmware", whatever
the rigs are called (sim against sim-regressed, maixbit-1 against a renamed maixbit-a). So with
``--match-by auto`` (the default):
1. a NEW rig is compared with the OLD rig of the same name;
2. else with the OLD rig on the same board whose firmware profile is of the same family
   (header ``firmware_family``, else the profile name up to its first '-'), preferring one that
   is not itself in NEW (a renamed rig), then one running the same profile; when that still
   leaves several, none is chosen and a note names them;
3. else the rig is not compared: its tests are listed as added, and a note says how to compare
   across boards (``--match-by test``).
Paired rigs are compared test by test (same node id). Every report says what it compared with
what (``describe``).
"""
from __future__ import annotations

from dataclasses import dataclass

from hil.report.runs import Run, same_run

SAME_RIG = "same rig"
SAME_FAMILY = "same board and firmware family"


@dataclass(frozen=True)
class RigPair:
    new_rig: str
    old_rig: str | None        # None: nothing on the OLD side to compare with
    how: str = ""              # SAME_RIG, SAME_FAMILY, or "" when not paired
    note: str = ""             # why not paired


def _rigs(runs: list[Run]) -> list[str]:
    return sorted({rig for r in runs for rig in r.rigs})


def _run_of(runs: list[Run], rig: str) -> Run | None:
    """The latest run of a side that holds ``rig``."""
    holding = [r for r in runs if rig in r.rigs]
    return max(holding, key=Run.sort_key) if holding else None


def identity(runs: list[Run], rig: str) -> tuple[str, str, str]:
    """(board, firmware family, firmware profile) of ``rig`` on one side."""
    run = _run_of(runs, rig)
    if run is None:
        return "", "", ""
    return run.board_of(rig), run.family_of(rig), run.firmware_of(rig)[0]


def pair_rigs(old_runs: list[Run], new_runs: list[Run], *,
              by_board: bool = True) -> dict[str, RigPair]:
    """NEW rig -> the OLD rig it is compared with (see the module docstring)."""
    olds = _rigs(old_runs)
    news = _rigs(new_runs)
    pairs: dict[str, RigPair] = {}
    for rig in news:
        if rig in olds:
            pairs[rig] = RigPair(rig, rig, SAME_RIG)
            continue
        board, fam, profile = identity(new_runs, rig)
        if not by_board:
            pairs[rig] = RigPair(rig, None, note=f"no OLD run on rig {rig}")
            continue
        if not board:
            pairs[rig] = RigPair(rig, None, note=f"the record of rig {rig} names no board")
            continue
        cands = [o for o in olds if identity(old_runs, o)[:2] == (board, fam)]
        for prefer in (lambda o: o not in news, lambda o: identity(old_runs, o)[2] == profile):
            if len(cands) > 1 and any(prefer(o) for o in cands):
                cands = [o for o in cands if prefer(o)]
        if len(cands) == 1:
            pairs[rig] = RigPair(rig, cands[0], SAME_FAMILY)
        elif cands:
            pairs[rig] = RigPair(rig, None, note=(
                f"rig {rig} ({board}, {fam}) could be compared with any of {', '.join(cands)}: "
                f"compare one run of each, or use --match-by test"))
        else:
            pairs[rig] = RigPair(rig, None, note=(
                f"no OLD run on the same board and firmware family as rig {rig} ({board}, {fam}): "
                f"its tests are listed as added (compare across boards with --match-by test)"))
    return pairs


def side_text(runs: list[Run], rig: str) -> str:
    """'sim (maix-bit, maixpy-v0.6.2-full v0.6.2-75-g973361c0d; run 20261204-161301-sim,
    2026-12-04 16:13)'."""
    run = _run_of(runs, rig)
    if run is None:
        return rig
    board = run.board_of(rig)
    profile, version = run.firmware_of(rig)
    build = " ".join(x for x in (profile, version) if x) or "firmware unknown"
    when = f", {run.started:%Y-%m-%d %H:%M} UTC" if run.started else ""
    return f"{rig} ({', '.join(x for x in (board, build) if x)}; run {run.run_id}{when})"


def describe(pair: RigPair, old_runs: list[Run], new_runs: list[Run]) -> str:
    """What was compared with what, as one sentence."""
    new = side_text(new_runs, pair.new_rig)
    if pair.old_rig is None:
        return f"{new}: not compared: {pair.note}"
    if pair.how == SAME_RIG:
        rig = pair.new_rig
        return (f"{rig}{_board(new_runs, rig)}: {_run_text(new_runs, rig)} "
                f"against {_run_text(old_runs, rig)}: same rig, test by test")
    old = side_text(old_runs, pair.old_rig)
    return f"{new} against {old}: {pair.how}, test by test"


def _board(runs: list[Run], rig: str) -> str:
    run = _run_of(runs, rig)
    board = run.board_of(rig) if run else ""
    return f" ({board})" if board else ""


def _run_text(runs: list[Run], rig: str) -> str:
    """'run 20261204-161301-sim (maixpy-v0.6.2-full v0.6.2-75-g973361c0d, 2026-12-04 16:13 UTC)'."""
    run = _run_of(runs, rig)
    if run is None:
        return "no run"
    build = " ".join(x for x in run.firmware_of(rig) if x) or "firmware unknown"
    when = f", {run.started:%Y-%m-%d %H:%M} UTC" if run.started else ""
    return f"run {run.run_id} ({build}{when})"


def previous_for(history: list[Run], rig: str, new: Run) -> tuple[Run, str] | None:
    """The run (and its rig) the latest night of ``rig`` is compared with: the latest earlier
    run of the same rig, else the latest earlier run of another rig on the same board and
    firmware family (a renamed or new rig). Finished runs are preferred to killed ones."""
    earlier = [r for r in history if not same_run(r, new) and r.sort_key() < new.sort_key()]
    own = [(r, rig) for r in earlier if rig in r.rigs]
    if own:
        return _latest(own)
    board, fam = new.board_of(rig), new.family_of(rig)
    if not board:
        return None
    kin = [(r, other) for r in earlier for other in r.rigs
           if other != rig and r.board_of(other) == board and r.family_of(other) == fam]
    return _latest(kin) if kin else None


def _latest(cands: list[tuple[Run, str]]) -> tuple[Run, str]:
    finished = [c for c in cands if c[0].finished]
    return max(finished or cands, key=lambda c: (c[0].sort_key(), c[1]))
