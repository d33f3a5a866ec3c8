"""The unit files: `systemd-analyze verify` on each as installed, and the properties the box relies on."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import xml.dom.minidom
from pathlib import Path, PurePosixPath

import pytest

from .conftest import REPO, UNITS

SYSTEMD = REPO / "systemd"


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values...]}} (keys may repeat in systemd units)."""
    out: dict[str, dict[str, list[str]]] = {}
    section = None
    for raw in (SYSTEMD / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = out.setdefault(line.strip("[]"), {})
            continue
        key, value = line.split("=", 1)
        section.setdefault(key, []).append(value)
    return out


@pytest.mark.parametrize("name", UNITS)
def test_systemd_analyze_verify_passes(name, verify_root):
    assert shutil.which("systemd-analyze"), "systemd-analyze is needed (Debian package systemd)"
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", f"--root={verify_root}", f"/etc/systemd/system/{name}"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    ours = [line for line in proc.stderr.splitlines() if "masterbox" in line]
    assert ours == [], "\n".join(ours)


def test_engine_unit_is_a_realtime_watched_notify_service():
    s = unit("masterbox-engine.service")["Service"]
    assert s["Type"] == ["notify"]
    assert "firmware.watchdog" in s["ExecStart"][0]
    assert s["Restart"] == ["always"]
    assert s["WatchdogSec"] and s["WatchdogSec"][0].rstrip("s").isdigit()
    assert s["CPUSchedulingPolicy"] == ["fifo"]
    assert 1 <= int(s["CPUSchedulingPriority"][0]) <= int(s["LimitRTPRIO"][0])
    assert s["LimitMEMLOCK"] == ["infinity"]
    assert s["User"] == ["masterbox"] and "audio" in s["SupplementaryGroups"][0].split()
    # A restart after kill -9 must leave room for audio to come back within 3 s.
    assert float(s["RestartSec"][0].rstrip("s")) <= 1
    for key, value in {"ProtectSystem": "strict", "PrivateTmp": "yes", "NoNewPrivileges": "yes",
                       "ReadWritePaths": "/var/lib/masterbox"}.items():
        assert s[key] == [value], key
    assert "MemoryDenyWriteExecute" not in s  # numba's JIT needs writable+executable pages
    assert "PrivateDevices" not in s  # would hide /dev/snd
    assert "char-alsa rw" in s["DeviceAllow"]


def test_control_unit_comes_after_the_engine_and_never_takes_it_down():
    u = unit("masterbox-control.service")
    assert "masterbox-engine.service" in u["Unit"]["After"][0]
    assert "Requires" not in u["Unit"] and "BindsTo" not in u["Unit"]
    s = u["Service"]
    assert set(s["SupplementaryGroups"][0].split()) >= {"gpio", "spi", "video"}   # video: vcgencmd's /dev/vcio
    assert {"char-gpiochip rw", "char-spi rw", "/dev/vcio rw"} <= set(s["DeviceAllow"])
    assert s["DevicePolicy"] == ["closed"]
    assert s["ProtectSystem"] == ["strict"] and s["NoNewPrivileges"] == ["yes"]
    assert s["ReadWritePaths"][0] == "/var/lib/masterbox"
    assert "firmware.control_main" in s["ExecStart"][0]


def writable_paths(service: dict[str, list[str]]) -> list[PurePosixPath]:
    """Every ``ReadWritePaths=`` entry (space-separated, "-" = may be missing) as a path."""
    return [PurePosixPath(p.lstrip("-")) for value in service.get("ReadWritePaths", []) for p in value.split()]


def covered(path: PurePosixPath, writable: list[PurePosixPath]) -> bool:
    return any(path == w or w in path.parents for w in writable)


def test_control_may_replace_the_config_file_and_the_engine_may_not():
    """The System page writes [audio] with a temporary file beside config.toml renamed over it: under
    ProtectSystem=strict the control unit needs the whole folder writable, not only the data root.
    The engine only reads the config, so /etc stays read-only for it."""
    engine, control = (unit(n)["Service"] for n in ("masterbox-engine.service", "masterbox-control.service"))
    for s in (engine, control):
        assert s["ProtectSystem"] == ["strict"]
    config = PurePosixPath(dict(v.split("=", 1) for v in control["Environment"])["MASTERBOX_CONFIG"])
    assert config == PurePosixPath(dict(v.split("=", 1) for v in engine["Environment"])["MASTERBOX_CONFIG"])
    assert covered(config.parent, writable_paths(control)), control["ReadWritePaths"]
    assert covered(PurePosixPath("/var/lib/masterbox"), writable_paths(control))
    assert not covered(config.parent, writable_paths(engine)), engine["ReadWritePaths"]
    assert writable_paths(engine) == [PurePosixPath("/var/lib/masterbox")]


def test_engine_and_control_share_a_run_directory_that_outlives_an_engine_restart():
    """Control finds the engine's socket and its start-failure record (firmware/start_failure.py:
    why a restarted engine could not open its device) in one folder, which systemd must not remove
    when the engine stops, or the record of a failed start would vanish with the failed start."""
    engine, control = (unit(n)["Service"] for n in ("masterbox-engine.service", "masterbox-control.service"))
    env = {u: dict(v.split("=", 1) for v in s["Environment"]) for u, s in (("e", engine), ("c", control))}
    assert env["e"]["MASTERBOX_RUN"] == env["c"]["MASTERBOX_RUN"] == "/run/masterbox"
    assert engine["RuntimeDirectory"] == control["RuntimeDirectory"] == ["masterbox"]
    assert engine["RuntimeDirectoryPreserve"] == ["yes"] and engine["Restart"] == ["always"]


def test_governor_one_shot_runs_before_the_engine():
    u = unit("masterbox-cpu-performance.service")
    assert u["Service"]["Type"] == ["oneshot"]
    assert "performance" in u["Service"]["ExecStart"][0]
    assert "masterbox-engine.service" in u["Unit"]["Before"][0]
    assert "raspi-config.service" in u["Unit"]["After"][0].split()   # Pi OS sets "ondemand" at boot: after it


def test_avahi_service_advertises_the_web_ui():
    doc = xml.dom.minidom.parse(str(SYSTEMD / "avahi" / "masterbox.service"))
    assert doc.getElementsByTagName("type")[0].firstChild.data == "_http._tcp"
    assert doc.getElementsByTagName("port")[0].firstChild.data == "8080"


def test_units_parse_as_ini_without_duplicated_sections():
    for name in UNITS:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read_string((SYSTEMD / name).read_text())
        assert set(parser.sections()) <= {"Unit", "Service", "Install"}, name
        assert Path(SYSTEMD / name).read_text().endswith("\n")


@pytest.mark.parametrize("name", UNITS)
def test_hardening_exposure_is_low(name):
    """systemd's own scoring (0 = locked down, 10 = wide open); every unit stays in its "OK" band."""
    proc = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(SYSTEMD / name)],
                          capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout + proc.stderr)
    assert found, proc.stdout + proc.stderr
    assert float(found.group(1)) <= 2.0, proc.stdout
