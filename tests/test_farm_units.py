"""Farm pieces on their own: farm rig keys, pools, lock keys, claims, the sim power switch,
labgrid errors (no coordinator needed)."""
from __future__ import annotations

import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from hil.errors import ConfigError, InfrastructureError, PowerError, RigConfigError
from hil.farm.claim import Claimer, lock_key, take_rig
from hil.farm.lock import RigLock
from hil.farm.pool import load_pool
from hil.drivers.power import make_power
from hil.drivers.power.labgrid import LabgridPower
from hil.drivers.power.sim import SimPower
from hil.rig import load_rig, parse_rig

ROOT = Path(__file__).resolve().parent.parent
RIGS = ROOT / "rigs"


def rig_text(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(textwrap.dedent(f"""\
        [rig]
        name = "{name}"
        board = "maix-bit"
        [firmware]
        profile = "maixpy-v0.6.2-full"
        """) + textwrap.dedent(body))
    return path


# -- rig files ---------------------------------------------------------------------------------------
def test_shipped_farm_rigs_and_pool_load() -> None:
    pool = load_pool("sim4", RIGS)
    assert [r.name for r in pool.rigs] == ["farm-sim-a", "farm-sim-b", "farm-sim-c", "farm-sim-d"]
    assert all(r.is_sim and r.sim.pace == "line" for r in pool.rigs)
    lg = load_rig("farm-labgrid", RIGS)
    assert lg.port_from_place and lg.power.driver == "labgrid" and lg.power.place == "maixbit-1"
    assert lg.labgrid.address == "labgrid.example.org:20408"
    s2n = load_rig("farm-ser2net", RIGS)
    assert s2n.serial.port == "rfc2217://bench2.example.org:7001" and s2n.power.driver == "dtr-rts"


def test_labgrid_rig_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = parse_rig(rig_text(tmp_path, "lg", """\
        [serial]
        [power]
        driver = "labgrid"
        [labgrid]
        place = "bench-7"
        """))
    assert rig.serial.port == "labgrid" and rig.power.place == "bench-7" and rig.power.off_time == 1.0
    monkeypatch.setenv("LG_COORDINATOR", "10.0.0.9:20408")
    assert rig.labgrid.address == "10.0.0.9:20408"
    monkeypatch.delenv("LG_COORDINATOR")
    assert rig.labgrid.address == "127.0.0.1:20408"


@pytest.mark.parametrize("body, error", [
    ("[serial]\nport = \"labgrid\"\n[power]\ndriver = \"none\"\n",
     "serial.port: \"labgrid\" takes the port of a labgrid place: add a [labgrid] table"),
    ("[serial]\n[power]\ndriver = \"none\"\n[labgrid]\nplace = \"p\"\ncoordinator = \"nohost\"\n",
     "labgrid.coordinator: 'nohost': expected HOST:PORT"),
    ("[serial]\nport = \"sim\"\n[power]\ndriver = \"sim\"\n[sim]\nbuild = \"maixpy-v0.6.2-full\"\n[labgrid]\nplace = \"p\"\n",
     "[labgrid] and [sim] cannot both be given"),
    ("[serial]\nport = \"rfc2217://127.0.0.1:7\"\n[power]\ndriver = \"sim\"\n",
     "power.driver: 'sim' on a rig that is not simulated needs power.control"),
    ("[serial]\nport = \"sim\"\n[power]\ndriver = \"sim\"\ncontrol = \"/x.sock\"\n[sim]\nbuild = \"maixpy-v0.6.2-full\"\n",
     "power.control: a simulated rig uses its own simulator's control socket"),
    ("[serial]\nport = \"rfc2217://127.0.0.1:7?ign_set_controls\"\n[power]\ndriver = \"none\"\n",
     "unknown rfc2217:// option 'ign_set_controls' (allowed: ign_set_control, poll_modem, timeout, logging)"),
    ("[serial]\nport = \"socket://127.0.0.1:7?ign_set_control\"\n[power]\ndriver = \"none\"\n",
     "unknown socket:// option 'ign_set_control' (allowed: logging)"),
    ("[serial]\nport = \"rfc2217://127.0.0.1:7?timeout=-1\"\n[power]\ndriver = \"none\"\n",
     "timeout='-1' must be a number of seconds > 0"),
])
def test_farm_rig_errors_name_file_and_key(tmp_path: Path, body: str, error: str) -> None:
    path = rig_text(tmp_path, "bad", body)
    with pytest.raises(RigConfigError) as info:
        parse_rig(path)
    assert str(info.value).startswith(str(path)) and error in str(info.value), str(info.value)


def test_rfc2217_options_accepted(tmp_path: Path) -> None:
    rig = parse_rig(rig_text(tmp_path, "ok", """\
        [serial]
        port = "rfc2217://127.0.0.1:7778?ign_set_control&timeout=5"
        [power]
        driver = "sim"
        control = "/srv/sims/a/control.sock"
        """))
    assert rig.power.control == "/srv/sims/a/control.sock"
    power = make_power(rig, lambda: None)
    assert isinstance(power, SimPower) and power.client is not None


def test_pool_errors(tmp_path: Path) -> None:
    pools = tmp_path / "pools"
    pools.mkdir()
    (pools / "p.toml").write_text('[pool]\nname = "p"\nrigs = ["sim", "sim"]\n')
    with pytest.raises(RigConfigError, match=r"p.toml: pool.rigs: lists sim more than once"):
        load_pool("p", tmp_path)
    (pools / "p.toml").write_text('[pool]\nname = "p"\nrigs = ["nope"]\n')
    with pytest.raises(RigConfigError, match=r"pool.rigs: 'nope': rig 'nope' not found"):
        load_pool("p", tmp_path)
    (pools / "q.toml").write_text('[pool]\nname = "other"\nrigs = ["sim"]\n')
    with pytest.raises(RigConfigError, match=r"pool.name: 'other' must match the file name 'q'"):
        load_pool("q", tmp_path)
    with pytest.raises(RigConfigError, match=r"rig pool .zz. not found: .* \(known pools: p, q, sim4\)"):
        load_pool("zz", tmp_path)


# -- lock keys and claims ------------------------------------------------------------------------------
def test_lock_key_names_the_board(tmp_path: Path) -> None:
    sim = load_rig("farm-sim-a", RIGS)
    assert lock_key(sim, tmp_path / "r1") != lock_key(sim, tmp_path / "r2")   # another state dir
    assert lock_key(sim, tmp_path / "r1").startswith("sim-farm-sim-a-")
    emulated = load_rig("qemu-csdk", RIGS)                                     # its flash is a file too
    assert lock_key(emulated, tmp_path / "r1").startswith("qemu-qemu-csdk-")
    assert lock_key(emulated, tmp_path / "r1") != lock_key(emulated, tmp_path / "r2")
    net = load_rig("farm-ser2net", RIGS)
    assert lock_key(net, tmp_path) == "net-bench2.example.org-7001"
    dev = tmp_path / "ttyUSB7"
    dev.write_text("")
    alias = tmp_path / "by-id-usb-1a86"
    alias.symlink_to(dev)
    a = replace(net, serial=replace(net.serial, port=str(dev)))
    b = replace(net, name="other", serial=replace(net.serial, port=str(alias)))
    assert lock_key(a, tmp_path) == lock_key(b, tmp_path)   # one board, two names


def test_claimer_takes_free_rigs_and_reports_busy_ones(tmp_path: Path) -> None:
    pool = list(load_pool("sim4", RIGS).rigs)
    results, locks = tmp_path / "results", tmp_path / "locks"
    other = RigLock(locks, lock_key(pool[0], results), pool[0].name, ttl=300)
    other.acquire()
    claimer = Claimer(pool, results=results, lock_dir=locks, ttl=5)
    try:
        claims = claimer.claim(want=2, need=1, wait=0)
        assert [c.rig.name for c in claims] == ["farm-sim-b", "farm-sim-c"]
        assert all(c.lock.held for c in claims)
    finally:
        assert claimer.release_all() == []
    assert not any(c.lock.held for c in claims)
    start = time.monotonic()
    with pytest.raises(InfrastructureError) as info:
        Claimer(pool[:1], results=results, lock_dir=locks).claim(1, 1, wait=0.3)
    assert time.monotonic() - start >= 0.3
    assert str(info.value).startswith("rig farm-sim-a: busy: held by ")
    other.release()
    with take_rig(pool[0], results=results, lock_dir=locks) as rig:
        assert rig is pool[0] and len(list(locks.glob("*.lock"))) == 1
    assert not list(locks.glob("*.lock"))


# -- the simulator's power as labgrid's rest switch -------------------------------------------------
def test_simpower_speaks_labgrids_rest_model(sim_server) -> None:
    from hil.farm.simpower import SimPowerHttp
    with SimPowerHttp(sim_server.control_path) as switch:
        url = switch.url.format(index=0)
        assert url.startswith("http://127.0.0.1:")
        assert urllib.request.urlopen(url, timeout=5).read() == b"1"
        req = urllib.request.Request(url, data=b"0", method="PUT")
        assert urllib.request.urlopen(req, timeout=5).read() == b"0"
        assert urllib.request.urlopen(url, timeout=5).read() == b"0"
        urllib.request.urlopen(urllib.request.Request(url, data=b"1", method="PUT"), timeout=5)
        assert urllib.request.urlopen(url, timeout=5).read() == b"1"
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(switch.url.format(index=3), timeout=5)
        assert info.value.code == 404
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(urllib.request.Request(url, data=b"on", method="PUT"), timeout=5)
        assert info.value.code == 400
        # labgrid's own rest backend drives it
        from labgrid.driver.power import rest
        rest.power_set(switch.url, None, "0", False)
        assert rest.power_get(switch.url, None, "0") is False
        rest.power_set(switch.url, None, "0", True)
        assert rest.power_get(switch.url, None, "0") is True


def test_simpower_refuses_a_public_address(tmp_path: Path) -> None:
    from hil.errors import SimError
    from hil.farm.simpower import SimPowerHttp
    with pytest.raises(SimError, match="not a loopback address"):
        SimPowerHttp(tmp_path / "control.sock", host="0.0.0.0")


# -- labgrid without a coordinator: one-line errors ----------------------------------------------------
def test_labgrid_power_without_coordinator_is_one_line() -> None:
    pytest.importorskip("labgrid.remote.client")
    power = LabgridPower("place-1", "r", coordinator="127.0.0.1:9")
    start = time.monotonic()
    with pytest.raises(PowerError) as info:
        power.cycle()
    assert time.monotonic() - start < 10
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("rig r: labgrid power (place place-1): labgrid coordinator 127.0.0.1:9: cannot connect")
    power.close()


def test_labgrid_claim_without_coordinator_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("labgrid.remote.client")
    rig = parse_rig(rig_text(tmp_path, "lg", """\
        [serial]
        [power]
        driver = "labgrid"
        [labgrid]
        place = "bench-7"
        coordinator = "127.0.0.1:9"
        """))
    with pytest.raises(InfrastructureError, match=r"^labgrid coordinator 127.0.0.1:9: cannot connect"):
        Claimer([rig], results=tmp_path, lock_dir=tmp_path / "locks").claim(1, 1, 0)
    from hil.farm import labgrid
    assert labgrid.Session._current is None and not labgrid._places


def test_labgrid_missing_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    from hil.farm import labgrid
    monkeypatch.setitem(sys.modules, "labgrid.remote", None)
    with pytest.raises(ConfigError, match=r"labgrid rigs need labgrid >= 24 \(pip install 'k210-hil\[farm\]'\)"):
        labgrid.Session("127.0.0.1:9")


def test_missing_device_takes_no_lock(tmp_path: Path) -> None:
    rig = load_rig("maixbit", RIGS)
    rig = replace(rig, serial=replace(rig.serial, port=str(tmp_path / "ttyUSB9")))
    claimer = Claimer([rig], results=tmp_path, lock_dir=tmp_path / "locks")
    claims = claimer.claim(1, 1, 0)
    assert claims[0].lock is None and claims[0].how == "no lock"
    assert not (tmp_path / "locks").exists() or not list((tmp_path / "locks").iterdir())
    claimer.release_all()
