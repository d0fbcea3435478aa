"""Power drivers: command and uhubctl through fake executables, sim through a SimServer."""
from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from hil.errors import PowerError
from hil.link import Link, SerialLog
from hil.drivers.power import make_power
from hil.drivers.power.command import CommandPower
from hil.drivers.power.dtr_rts import DtrRtsPower
from hil.drivers.power.labgrid import LabgridPower
from hil.drivers.power.none import NoPower
from hil.drivers.power.sim import SimPower
from hil.drivers.power.uhubctl import UhubctlPower
from hil.rig import load_rig

RIGS = Path(__file__).resolve().parent.parent / "rigs"


def wait_until(cond, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def fake_tool(bin_dir: Path, name: str, record: Path, exit_code: int = 0, stderr: str = "",
              sleep: float = 0) -> Path:
    """An executable that appends its argv (one line) to ``record``."""
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text("#!/bin/sh\n"
                    f'printf "%s\\n" "$*" >> "{record}"\n'
                    + (f"sleep {sleep}\n" if sleep else "")
                    + (f'echo "{stderr}" >&2\n' if stderr else "")
                    + f"exit {exit_code}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return tool


@pytest.fixture
def on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_command_driver_runs_argv_lists(tmp_path: Path, on_path: Path) -> None:
    record = tmp_path / "calls.txt"
    fake_tool(on_path, "relayctl", record)
    notes: list[str] = []
    spec = CommandPower.spec_of(on=("relayctl", "3", "on"), off=("relayctl", "3", "off"),
                     off_time=0.01, timeout=5)
    power = CommandPower(spec, "bench", notes.append)
    power.on()
    power.off()
    power.cycle()            # no cycle argv: off, pause, on
    assert record.read_text().splitlines() == ["3 on", "3 off", "3 off", "3 on"]
    assert notes[0] == "power command on: relayctl 3 on"
    power = CommandPower(CommandPower.spec_of(**{**spec.options, "cycle": ("relayctl", "3", "cycle", "a b")}), "bench")
    power.cycle()
    assert record.read_text().splitlines()[-1] == "3 cycle a b"   # one argv item, no shell splitting
    assert power.can_power and power.can_reset and power.drops_port


def test_command_failure_names_command_and_stderr(tmp_path: Path, on_path: Path) -> None:
    fake_tool(on_path, "relayctl", tmp_path / "calls.txt", exit_code=3, stderr="relay 3: no such channel")
    power = CommandPower(CommandPower.spec_of(on=("relayctl", "3", "on"), off=("relayctl", "x")), "bench")
    with pytest.raises(PowerError) as info:
        power.on()
    assert str(info.value) == ("rig bench: power.on: `relayctl 3 on` exited with status 3: "
                               "relay 3: no such channel")


def test_command_not_found_and_timeout(tmp_path: Path, on_path: Path) -> None:
    power = CommandPower(CommandPower.spec_of(on=("no-such-relay-tool",), off=("x",)), "bench")
    with pytest.raises(PowerError, match=r"power.on: command not found: 'no-such-relay-tool'"):
        power.on()
    fake_tool(on_path, "slowrelay", tmp_path / "calls.txt", sleep=5)
    power = CommandPower(CommandPower.spec_of(on=("slowrelay",), off=("x",), timeout=0.3), "bench")
    start = time.monotonic()
    with pytest.raises(PowerError, match=r"`slowrelay` did not finish within 0.3 s"):
        power.on()
    assert time.monotonic() - start < 3


def test_uhubctl_driver_argv(tmp_path: Path, on_path: Path) -> None:
    record = tmp_path / "calls.txt"
    fake_tool(on_path, "uhubctl", record)
    power = UhubctlPower(UhubctlPower.spec_of(hub="1-1.4", hub_port=2, off_time=1.5), "desk")
    power.off()
    power.on()
    power.cycle()
    assert record.read_text().splitlines() == [
        "-l 1-1.4 -p 2 -a off", "-l 1-1.4 -p 2 -a on", "-l 1-1.4 -p 2 -a cycle -d 1.5"]


def test_uhubctl_explicit_path_and_failure(tmp_path: Path) -> None:
    tool = fake_tool(tmp_path / "sbin", "uhubctl", tmp_path / "calls.txt", exit_code=1,
                     stderr="No compatible devices detected!")
    power = UhubctlPower(UhubctlPower.spec_of(hub="9-9", hub_port=1, uhubctl=str(tool)), "desk")
    with pytest.raises(PowerError, match=r"uhubctl off \(hub 9-9 port 1\): .* exited with status 1: "
                                         r"No compatible devices detected!"):
        power.off()


def test_none_and_labgrid_drivers_say_what_they_cannot_do() -> None:
    with pytest.raises(PowerError, match="rig r: power driver 'none' cannot power-cycle the board"):
        NoPower("r").cycle()
    # Nothing listens on 127.0.0.1:9: the labgrid driver names the place and the coordinator.
    with pytest.raises(PowerError, match=r"rig r: labgrid power \(place place-1\): labgrid coordinator "
                                         r"127.0.0.1:9: cannot connect"):
        LabgridPower("place-1", "r", coordinator="127.0.0.1:9").cycle()


def test_make_power_picks_the_rig_driver() -> None:
    rig = load_rig("maixbit", RIGS)
    assert isinstance(make_power(rig, lambda: None), DtrRtsPower)
    with pytest.raises(PowerError, match="needs the simulator's control socket"):
        make_power(load_rig("sim", RIGS), lambda: None)


def test_dtr_rts_on_a_pty_is_a_clear_error(tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        link = Link(os.ttyname(slave), log=SerialLog(tmp_path / "l.log"))
        power = DtrRtsPower(load_rig("maixbit", RIGS).board, lambda: link, "maixbit", step_pause=0.001)
        with pytest.raises(PowerError, match="dtr-rts reset impossible: .* has no DTR/RTS"):
            power.reset()
        link.close()
    finally:
        os.close(master)
        os.close(slave)


def test_sim_driver_switches_the_simulated_board(sim_server) -> None:
    notes: list[str] = []
    power = SimPower(sim_server.control_path, "sim", notes.append, off_time=0.01)
    assert power.status()["power"] is True
    power.off()
    assert power.status()["power"] is False
    power.on()
    assert power.status()["power"] is True
    boots = power.status()["boots"]
    power.cycle()
    assert wait_until(lambda: power.status()["boots"] > boots)
    power.reset()
    assert wait_until(lambda: power.status()["boots"] > boots + 1)
    assert notes == ["power sim: off", "power sim: on", "power sim: off", "power sim: on",
                     "power sim: reset button"]


def test_sim_driver_without_simulator(tmp_path: Path) -> None:
    power = SimPower(tmp_path / "control.sock", "sim")
    with pytest.raises(PowerError, match=r"rig sim: sim power on: no simulator is listening on"):
        power.on()


def test_dtr_rts_reset_reaches_the_simulator_over_rfc2217(sim_server, tmp_path: Path) -> None:
    from k210sim.control import ControlClient
    client = ControlClient(sim_server.control_path)
    link = Link(sim_server.endpoints["rfc2217"], log=SerialLog(tmp_path / "l.log"))
    try:
        since = client.status()["boots"]
        from hil.boards import get_board
        power = DtrRtsPower(get_board("maix-bit"), lambda: link, "sim-rfc2217", step_pause=0.02)
        power.reset()
        assert wait_until(lambda: client.status()["boots"] > since)
        kinds = [e["kind"] for e in client.events(0)]
        assert "lines" in kinds
    finally:
        link.close()
