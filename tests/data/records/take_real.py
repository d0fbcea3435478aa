"""Keep a real night as a small fixture: the healthy and the regressed simulated build.

    ./dev pytest --rig sim --hil-results=results/full
    ./dev pytest --rig sim-regressed --hil-results=results/regressed
    .venv/bin/python tests/data/records/take_real.py results/full results/regressed

writes tests/data/records/regressed_night/{full,regressed}/run.jsonl: the run records as the
plugin wrote them, minus what is of this machine (host, user, port, argv) and minus tracebacks
(``longrepr`` keeps the one-line message). Rerun after the simulated builds change; the report
tests read what the records say (outcomes, messages, measurements), not fixed numbers, where
they can.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "regressed_night"


def trim(record: dict) -> dict:
    r = dict(record)
    if r.get("type") == "header":
        r.update(host="ci", user="ci", port="sim", argv=["pytest", "--rig", r.get("rig", "")])
    elif r.get("type") == "test":
        r["longrepr"] = r.get("message", "")
    return r


def take(results: Path, side: str) -> None:
    files = sorted(results.glob("*/run*.jsonl")) or sorted(results.glob("run*.jsonl"))
    if len(files) != 1:
        sys.exit(f"take_real: {results}: expected one run record, found {len(files)}")
    lines = [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]
    if lines[-1].get("type") != "footer":
        sys.exit(f"take_real: {files[0]}: the run has no footer (killed?)")
    dest = OUT / side / "run.jsonl"
    dest.parent.mkdir(parents=True)
    dest.write_text("".join(json.dumps(trim(r), ensure_ascii=False) + "\n" for r in lines))
    print(f"{dest.relative_to(HERE)}: {len(lines) - 2} tests from {files[0]}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    shutil.rmtree(OUT, ignore_errors=True)
    take(Path(sys.argv[1]), "full")
    take(Path(sys.argv[2]), "regressed")
