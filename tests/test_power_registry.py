"""Power drivers register with their schema: a new driver is one file, and rig files, validation,
the board and its lifecycle take it without a change anywhere else.

The driver below is written to a file of its own (as a team would add one for its relay board),
imported, and used by a simulated rig; it switches the simulator through its control socket, as
a relay would switch the board's supply.
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from hil.board import Board
from hil.drivers.power import POWER
from hil.errors import RigConfigError
from hil.link import SerialLog
from hil.rig import load_rig

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("k210sim.maixpy", reason="the simulated MaixPy firmware is not built yet")

RELAY_X = '''\
"""relay-x: an 8-channel relay board switching the board's supply (here: the simulator's)."""
from hil.drivers.power.base import POWER, PowerDriver
from hil.drivers.schema import Key, positive

CALLS = []


def _channel(value):
    return "" if 1 <= value <= 8 else f"must be a relay channel 1..8, got {value}"


@POWER.register
class RelayX(PowerDriver):
    name = "relay-x"
    keys = (Key("channel", int, check=_channel), Key("settle", float, 0.05, positive))
    can_reset = True
    can_power = True
    simulated = True

    @classmethod
    def create(cls, spec, ctx):
        from k210sim.control import ControlClient
        driver = cls(ctx.rig_name, ctx.note)
        driver.spec, driver.client = spec, ControlClient(ctx.control)
        return driver

    def on(self):
        CALLS.append(("on", self.spec.channel))
        self.client.power(True)

    def off(self):
        CALLS.append(("off", self.spec.channel))
        self.client.power(False)

    def cycle(self):
        import time
        self.off()
        time.sleep(self.spec.settle)
        self.on()
'''


@pytest.fixture
def relay_x(tmp_path: Path):
    """The driver file, imported (registering it); unregistered afterwards."""
    path = tmp_path / "relay_x.py"
    path.write_text(RELAY_X)
    spec = importlib.util.spec_from_file_location("relay_x", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["relay_x"] = module
    spec.loader.exec_module(module)
    yield module
    POWER.unregister("relay-x")
    sys.modules.pop("relay_x", None)


def rig_file(tmp_path: Path, power: str) -> Path:
    text = (ROOT / "rigs" / "sim.toml").read_text()
    text = text.replace('driver = "sim"      # the simulator\'s control socket plays a network power switch', power)
    path = tmp_path / "rigs" / "sim.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_a_new_driver_in_one_file_drives_a_board(relay_x, sim_server, tmp_path: Path) -> None:
    assert "relay-x" in POWER.names()
    rig = load_rig(rig_file(tmp_path, 'driver = "relay-x"\nchannel = 3'))
    assert rig.power.driver == "relay-x" and rig.power.channel == 3 and rig.power.settle == 0.05
    rig = replace(rig, sim=replace(rig.sim, pace="off"))
    with Board(rig, results=tmp_path, log=SerialLog(tmp_path / "board.log"),
               sim_endpoints=sim_server.endpoints) as board:
        board.lifecycle.start()
        board.lifecycle.power_cycle()
        assert relay_x.CALLS == [("off", 3), ("on", 3)]
        assert board.repl.eval("1 + 1") == 2
        # the ladder uses its capabilities: a hung board is power-cycled by it
        board.repl.exec_start("import micropython\nmicropython.kbd_intr(-1)\nwhile True:\n    pass\n")
        assert not board.lifecycle.responsive(timeout=1.0)
        assert board.lifecycle.recover("hung") == "hard reset"      # reset() = cycle() for a power switch
        assert relay_x.CALLS[-2:] == [("off", 3), ("on", 3)]


@pytest.mark.parametrize("table, key, words", [
    ('driver = "relay-x"', "power.channel", "missing (required)"),
    ('driver = "relay-x"\nchannel = 9', "power.channel", "must be a relay channel 1..8, got 9"),
    ('driver = "relay-x"\nchannel = 2\nsettle = 0', "power.settle", "must be > 0"),
    ('driver = "relay-x"\nchannel = 2\nhub = "1-1"', "power.hub", "unknown key (allowed in [power]: channel, driver, settle)"),
    ('driver = "relay-y"', "power.driver", "'relay-y' is not one of: command, dtr-rts, labgrid, none, qemu, relay-x, sim, uhubctl"),
])
def test_its_keys_are_checked_with_one_line_errors(relay_x, tmp_path: Path, table: str, key: str, words: str) -> None:
    path = rig_file(tmp_path, table)
    with pytest.raises(RigConfigError) as info:
        load_rig(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: ") and words in message and "\n" not in message, message


def test_a_driver_that_cannot_drive_a_simulated_rig_is_refused(tmp_path: Path) -> None:
    path = rig_file(tmp_path, 'driver = "command"\non = ["relay", "on"]\noff = ["relay", "off"]')
    with pytest.raises(RigConfigError, match=r"power.driver: 'command' cannot drive a simulated rig "
                                             r"\(allowed: dtr-rts, none, sim\)"):
        load_rig(path)


def test_a_name_is_registered_once(relay_x) -> None:
    from hil.drivers.power.base import PowerDriver

    class Impostor(PowerDriver):
        name = "relay-x"
    from hil.errors import ConfigError
    with pytest.raises(ConfigError, match="power driver 'relay-x': already registered by relay_x.RelayX"):
        POWER.register(Impostor)
