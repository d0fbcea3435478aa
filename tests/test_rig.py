"""Rig files: the shipped rigs load, and every file in the bad-rig corpus fails with one line."""
from __future__ import annotations

from pathlib import Path

import pytest

from hil.errors import RigConfigError
from hil.rig import load_rig, parse_rig, rig_names

ROOT = Path(__file__).resolve().parent.parent
RIGS = ROOT / "rigs"
BAD = Path(__file__).resolve().parent / "data" / "rigs_bad"


def _expected(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} lacks its '# expect: KEY' line"
    return first[len("# expect: "):]


@pytest.mark.parametrize("name", rig_names(RIGS))
def test_shipped_rigs_load(name: str) -> None:
    rig = load_rig(name, RIGS)
    assert rig.name == name
    assert rig.profile.name == rig.firmware.profile
    if rig.is_sim:
        assert rig.serial.port == "sim" and rig.power.driver == "sim"
    elif rig.labgrid is not None:
        assert rig.serial.port == "labgrid"
    elif rig.emulator is not None:
        assert rig.serial.port == "qemu" and rig.power.driver == "qemu"
    else:
        assert rig.serial.port.startswith("/dev/") or "://" in rig.serial.port


def test_expected_rigs_are_shipped() -> None:
    names = set(rig_names(RIGS))
    assert {"sim", "sim-minimum", "sim-minimum-v4", "sim-openmv", "sim-regressed", "sim-rfc2217",
            "maixbit", "maixdock", "maixgo", "maixduino"} <= names


def test_sim_rig_per_firmware_profile() -> None:
    """Every MaixPy profile has a simulated rig expecting it (C-SDK profiles, csdk-*, run under
    QEMU), and every build the simulator ships runs on one (the simulator's builds are its own:
    k210sim/builds, listed by file here, not imported)."""
    profiles = {p.stem for p in (RIGS / "firmware").glob("*.toml") if not p.stem.startswith("csdk-")}
    sims = [load_rig(n, RIGS) for n in rig_names(RIGS) if n.startswith("sim")]
    assert profiles <= {r.profile.name for r in sims}
    shipped = {p.stem for p in (RIGS.parent / "k210sim" / "builds").glob("*.toml")}
    assert shipped and shipped <= {r.sim.build for r in sims}


def test_real_board_wiring() -> None:
    assert load_rig("maixbit", RIGS).board.wiring == "dan"
    assert load_rig("maixgo", RIGS).board.wiring == "kd233"
    assert load_rig("maixduino", RIGS).board.boot_sequence == "boot_maixgo"
    assert load_rig("sim-rfc2217", RIGS).sim.transport == "rfc2217"


@pytest.mark.parametrize("path", sorted(BAD.glob("*.toml")), ids=lambda p: p.stem)
def test_bad_rig_corpus(path: Path) -> None:
    with pytest.raises(RigConfigError) as info:
        parse_rig(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert str(path) in message, message
    assert _expected(path) in message, message


def test_unknown_rig_names_the_directory_and_known_rigs(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text("")
    with pytest.raises(RigConfigError, match=r"rig 'nope' not found: no nope.toml in .*test_unknown.*"
                                             r"\(known rigs: a, farm-labgrid, .*sim\b"):
        load_rig("nope", tmp_path)


def test_unknown_key_lists_allowed(tmp_path: Path) -> None:
    text = (RIGS / "maixbit.toml").read_text().replace("boot_timeout = 10.0", "boot_timeout = 10.0\nbaudrate = 1")
    rig = tmp_path / "maixbit.toml"
    rig.write_text(text)
    with pytest.raises(RigConfigError, match=r"serial\.baudrate: unknown key \(allowed in \[serial\]: "
                                             r"baud, boot_timeout, fast_baud, isp_baud, port\)"):
        parse_rig(rig)


def test_image_relative_to_rig_file(tmp_path: Path) -> None:
    (tmp_path / "builds").mkdir()
    (tmp_path / "builds" / "fw.bin").write_bytes(b"\x02" + b"\0" * 100)
    text = (RIGS / "maixbit.toml").read_text().replace(
        '# image = "builds/maixpy_v0.6.2_75_g973361c0d.bin"', 'image = "builds/fw.bin"')
    (tmp_path / "maixbit.toml").write_text(text)
    rig = load_rig("maixbit", tmp_path)
    assert rig.firmware.image == (tmp_path / "builds" / "fw.bin").resolve()
    assert rig.firmware.flash_image_once


def test_power_driver_keys(tmp_path: Path) -> None:
    base = (RIGS / "maixbit.toml").read_text()
    text = base.replace('driver = "dtr-rts"', 'driver = "command"\non = ["relay", "on"]\n'
                        'off = ["relay", "off"]\ntimeout = 5\noff_time = 0.5')
    (tmp_path / "maixbit.toml").write_text(text)
    power = load_rig("maixbit", tmp_path).power
    assert power.on == ("relay", "on") and power.off == ("relay", "off") and power.cycle == ()
    assert power.timeout == 5.0 and power.off_time == 0.5
    text = base.replace('driver = "dtr-rts"', 'driver = "uhubctl"\nhub = "1-1.4"\nport = 2')
    (tmp_path / "maixbit.toml").write_text(text)
    power = load_rig("maixbit", tmp_path).power
    assert (power.hub, power.hub_port, power.uhubctl) == ("1-1.4", 2, "uhubctl")
