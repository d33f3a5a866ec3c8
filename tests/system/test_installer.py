"""systemd/install.sh and uninstall.sh, run for real into a temporary root."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
from pathlib import Path

import pytest

from .conftest import BASE_PYTHON, INSTALL, REPO, UNINSTALL, UNITS, install_into, run_script

CONFIG_FILES = ("config.toml", "config.toml.template")


def test_lays_down_code_venv_data_config_units(installed_root):
    r = installed_root
    log = (r / "install.log").read_text()
    skipped = [line for line in log.splitlines() if "skipped (--no-system): " in line]
    for thing in ("apt-get", "user 'masterbox'", "chown"):
        assert any(thing in line for line in skipped), thing
    assert (r / "opt/masterbox/src/firmware/cli.py").is_file()
    assert list((r / "opt/masterbox/src/firmware/__pycache__").glob("cli.*.pyc"))  # compiled: the services can't
    assert not (r / "opt/masterbox/src/.git").exists() and not (r / "opt/masterbox/src/.venv").exists()
    assert (r / "opt/masterbox/share/doc/README.md").is_file()
    for d in ("var/lib/masterbox/presets", "var/lib/masterbox/captures", "var/cache/masterbox/numba"):
        assert (r / d).is_dir(), d
    config = r / "etc/masterbox/config.toml"
    assert config.read_text() == (REPO / "firmware/config-template.toml").read_text()
    for name in UNITS:
        assert (r / "etc/systemd/system" / name).is_file()
        assert (r / "etc/systemd/system/multi-user.target.wants" / name).is_symlink()
    assert (r / "etc/avahi/services/masterbox.service").is_file()
    assert 'subject.user == "masterbox"' in (r / "etc/polkit-1/rules.d/50-masterbox.rules").read_text()
    wrapper = (r / "usr/local/bin/masterbox").read_text()
    assert "exec runuser -u masterbox -- /opt/masterbox/venv/bin/masterbox" in wrapper
    assert 'NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-/var/cache/masterbox/numba}"' in wrapper
    record = (r / "opt/masterbox/INSTALLED").read_text()
    assert "data_root=/var/lib/masterbox" in record and "user=masterbox" in record


def test_the_installed_venv_runs_masterbox(installed_root):
    exe = installed_root / "opt/masterbox/venv/bin/masterbox"
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("masterbox ")
    # The code runs from the installed copy, not from this checkout.
    where = subprocess.run([str(installed_root / "opt/masterbox/venv/bin/python"), "-c",
                            "import firmware; print(firmware.__file__)"], capture_output=True, text=True,
                           cwd=installed_root)
    assert where.stdout.strip().startswith(str(installed_root / "opt/masterbox/src"))


def test_upgrade_in_place_keeps_presets_captures_state_and_config(tmp_path):
    root = tmp_path / "root"
    install_into(root, "--no-warm")
    data = root / "var/lib/masterbox"
    mine = {
        data / "presets/vinyl.json": '{"format": "masterbox-preset", "name": "vinyl"}',
        data / "captures/take1.wav": "RIFF....",
        data / "captures/take1.json": "{}",
        data / "state.json": '{"active_preset": "vinyl"}',
    }
    for path, text in mine.items():
        path.write_text(text)
    config = root / "etc/masterbox/config.toml"
    config.write_text("# edited on the box\n[audio]\nperiod = 256\n")
    config.parent.chmod(0o750)      # as the installer left a box before the System page could write the config
    config.chmod(0o640)
    stale = root / "opt/masterbox/src/firmware/removed_in_this_release.py"
    stale.write_text("")

    proc = install_into(root, "--no-warm")

    assert "upgrading in place" in proc.stdout
    assert "config kept" in proc.stdout
    for path, text in mine.items():
        assert path.read_text() == text, path
    assert config.read_text() == "# edited on the box\n[audio]\nperiod = 256\n"
    # the upgrade gives the service group what the System page needs, and keeps the text
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o2770 and stat.S_IMODE(config.stat().st_mode) == 0o660
    assert (root / "etc/masterbox/config.toml.template").read_text() == \
        (REPO / "firmware/config-template.toml").read_text()
    assert not stale.exists()  # the code is replaced, not merged

    # Uninstall keeps the data and config ...
    run_script(UNINSTALL, "--root", str(root), "--no-system")
    assert not (root / "opt/masterbox").exists()
    assert not (root / "usr/local/bin/masterbox").exists()
    assert not (root / "etc/polkit-1/rules.d/50-masterbox.rules").exists()
    for name in UNITS:
        assert not (root / "etc/systemd/system" / name).exists()
        assert not (root / "etc/systemd/system/multi-user.target.wants" / name).exists()
    for path, text in mine.items():
        assert path.read_text() == text, path
    assert config.exists()
    # ... unless asked.
    run_script(UNINSTALL, "--root", str(root), "--no-system", "--purge")
    assert not data.exists() and not config.exists()


def test_every_path_is_overridable(tmp_path):
    root = tmp_path / "root"
    install_into(root, "--no-warm", "--prefix", "/srv/mb", "--data-root", "/data/mb", "--config-dir",
                 "/data/etc", "--cache-dir", "/data/cache", "--user", "mbox")
    engine = (root / "etc/systemd/system/masterbox-engine.service").read_text()
    assert "ExecStart=/srv/mb/venv/bin/python -m firmware.watchdog" in engine
    assert "ReadWritePaths=/data/mb" in engine and "MASTERBOX_CONFIG=/data/etc/config.toml" in engine
    control = (root / "etc/systemd/system/masterbox-control.service").read_text()
    assert "ReadWritePaths=-/data/etc\n" in control and "/etc/masterbox" not in control
    assert stat.S_IMODE((root / "data/etc").stat().st_mode) == 0o2770
    assert "NUMBA_CACHE_DIR=/data/cache/numba" in engine and "User=mbox" in engine
    assert "/opt/masterbox" not in engine and "/var/lib/masterbox" not in engine
    assert (root / "srv/mb/venv/bin/python").exists() and (root / "data/mb/presets").is_dir()
    assert (root / "data/etc/config.toml").is_file()
    assert 'subject.user == "mbox"' in (root / "etc/polkit-1/rules.d/50-masterbox.rules").read_text()


def test_the_service_group_may_replace_the_config_and_others_may_not_read_it(installed_root):
    """The System page replaces config.toml with a temporary file renamed over it, which needs write
    access to the folder: root:masterbox 2770 (setgid: what anyone writes there keeps the group), the
    file 0660, the template 0640; nothing for others. A --root install sets the modes; the owner
    needs the system and is said to be skipped."""
    conf = installed_root / "etc/masterbox"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o2770
    assert stat.S_IMODE((conf / "config.toml").stat().st_mode) == 0o660
    assert stat.S_IMODE((conf / "config.toml.template").stat().st_mode) == 0o640
    log = (installed_root / "install.log").read_text()
    assert "skipped (--no-system): " in log and "chown root:masterbox of /etc/masterbox and its files" in log


# -- the System page's apply as the service user, in the installer's layout ----------------------------
# Run as `nobody` (its own group standing in for `masterbox`): the suite runs as root, which may write
# anywhere, so the permissions only show with the privileges dropped (setpriv).
APPLY_AS_SERVICE_USER = r"""
import json, os, sys, time
from pathlib import Path

from mbweb_helpers import Api, StubEngine, StubMeters, set_password

from firmware.audio_settings import expected_device
from firmware.captures import CaptureIndex
from firmware.config import load_config
from firmware.control import Control
from firmware.presets import PresetStore
from firmware.state import StateStore
from webui import create_app


class RestartingEngine(StubEngine):
    # After a stop request it answers as the engine its supervisor started again: with the file's [audio].
    restarted = None

    def stop_engine(self):
        self.calls.append(("stop_engine",))
        self.restarted = time.monotonic()
        return {"ok": True}

    def status(self):
        s = super().status()
        if self.restarted is None:
            return {**s, "uptime_s": 3600.0, "blocks": 1000}
        audio = load_config(os.environ["MASTERBOX_CONFIG"])["audio"]
        return {**s, "uptime_s": time.monotonic() - self.restarted, "blocks": 1, "device": expected_device(audio)}


home = Path(os.environ["MASTERBOX_HOME"])
presets = PresetStore(home / "presets")
engine = RestartingEngine(home / "captures")
control = Control(state=StateStore(home / "state.json", presets=presets, autosave=False), presets=presets,
                  captures=CaptureIndex(home / "captures"), engine=engine, meters=StubMeters(engine), watch=False,
                  engine_supervised=True)
app = create_app(control, {"testing": True})
set_password(app)
api = Api(app.test_client())
assert api.login().status_code == 200
r = api.post("/api/v1/system/audio", json=json.loads(sys.argv[1]))
print(json.dumps({"status": r.status_code, "body": r.get_json(), "uid": os.getuid(),
                  "stops": engine.calls.count(("stop_engine",))}))
app.extensions["masterbox"].broadcaster.stop()
control.close()
"""


@pytest.fixture
def service_box():
    """A box's folders an unprivileged user can reach (pytest's own are root's, 0700), and that user
    (uid, gid): ``nobody`` and its group, standing in for ``masterbox``."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv (util-linux) to run the apply as an unprivileged user")
    user = pwd.getpwnam("nobody")
    probe = subprocess.run(["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
                            sys.executable, "-c", "import flask"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"nobody cannot run this venv's python ({sys.executable}): {probe.stderr.strip()[-300:]}")
    box = Path(tempfile.mkdtemp(prefix="mb-config-access-"))
    box.chmod(0o755)
    home = box / "home"
    home.mkdir()
    os.chown(home, user.pw_uid, user.pw_gid)
    yield box, user.pw_uid, user.pw_gid
    shutil.rmtree(box)


def lay_out_config(installed: Path, target: Path, gid: int, modes: dict[str, int] | None = None) -> Path:
    """``target`` as the installer leaves the config folder on the box: the files and modes of the
    ``installed`` tree (a --root install sets modes but cannot chown), owned by root and the service
    group ``gid``; ``modes`` (by name, "" = the folder) replaces some."""
    target.mkdir()
    for name in CONFIG_FILES:
        shutil.copyfile(installed / name, target / name)
    for name in ("", *CONFIG_FILES):
        os.chown(target / name, 0, gid)  # before chmod: a chown may clear the setgid bit
        mode = (modes or {}).get(name, stat.S_IMODE((installed / name).stat().st_mode))
        os.chmod(target / name, mode)
    return target


def apply_as_service_user(box: Path, uid: int, gid: int, changes: dict) -> dict:
    """POST /api/v1/system/audio from a control process running as ``uid``/``gid`` with no other group."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(box / "home"), "LANG": "C.UTF-8",
           "MASTERBOX_HOME": str(box / "home"), "MASTERBOX_CONFIG": str(box / "etc/config.toml"),
           "MASTERBOX_RUN": str(box / "home/run"), "NUMBA_CACHE_DIR": str(box / "home/numba"),
           "GPIOZERO_PIN_FACTORY": "mock", "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests/webui'}"}
    proc = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", sys.executable, "-c",
                           APPLY_AS_SERVICE_USER, json.dumps(changes)],
                          capture_output=True, text=True, timeout=180, env=env, cwd=box / "home")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["uid"] == uid
    return out


def test_the_service_user_applies_audio_settings_in_the_installed_layout(installed_root, service_box):
    box, uid, gid = service_box
    conf = lay_out_config(installed_root / "etc/masterbox", box / "etc", gid)
    config = conf / "config.toml"
    before = config.read_text()

    out = apply_as_service_user(box, uid, gid, {"period": 256, "rate": 44100})

    assert out["status"] == 200, out
    assert out["stops"] == 1  # the engine was restarted, and came back with the file's new [audio]
    assert out["body"]["result"]["engine"]["device"]["period"] == 256
    text = config.read_text()
    assert tomllib.loads(text)["audio"] == {"period": 256, "rate": 44100}
    assert [line for line in text.splitlines() if line in before.splitlines()] == before.splitlines()
    st = config.stat()
    # written by the service user; its group and the installer's mode kept, so whoever runs the engine
    # in that group reads it, and others still cannot
    assert (st.st_uid, st.st_gid) == (uid, gid)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert stat.S_IMODE(conf.stat().st_mode) == 0o2770 and conf.stat().st_uid == 0
    assert sorted(p.name for p in conf.iterdir()) == sorted(CONFIG_FILES)  # no temporary file left


def test_a_config_the_service_user_cannot_write_is_refused_by_name_and_nothing_changes(installed_root,
                                                                                       service_box):
    """The layout the installer made before (folder 0750, file 0640, both root:masterbox): the answer
    names the file and the reason, the engine is not stopped and nothing in the folder changed."""
    box, uid, gid = service_box
    conf = lay_out_config(installed_root / "etc/masterbox", box / "etc", gid,
                          modes={"": 0o750, "config.toml": 0o640})
    config = conf / "config.toml"
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_mode) for p in conf.iterdir()}

    out = apply_as_service_user(box, uid, gid, {"period": 256})

    assert out["status"] == 503, out
    error = out["body"]["error"]
    assert error.startswith(f"cannot write {config}: permission denied; nothing was changed"), error
    assert "install.sh" in error and out["body"]["config"] == str(config)
    assert out["stops"] == 0
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_mode) for p in conf.iterdir()} == before


def test_refuses_to_touch_this_machine_from_a_root_install_without_saying_so(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    proc = run_script(INSTALL, "--root", str(root), check=False)
    assert proc.returncode != 0
    assert "--no-system" in proc.stderr
    assert not any(root.iterdir())
    proc = run_script(INSTALL, "--frobnicate", check=False)
    assert proc.returncode == 2 and "unknown option" in proc.stderr


@pytest.mark.slow
def test_install_in_place_warms_the_numba_cache_for_this_cpu(tmp_path):
    """Without --root the installer compiles every kernel into the cache dir the engine unit names."""
    base = tmp_path / "box"
    args = ["--prefix", f"{base}/opt", "--data-root", f"{base}/data", "--config-dir", f"{base}/etc",
            "--cache-dir", f"{base}/cache", "--unit-dir", f"{base}/units", "--avahi-dir", f"{base}/avahi"]
    proc = run_script(INSTALL, "--no-system", "--python", BASE_PYTHON, "--reuse-site-packages",
                      sysconfig.get_path("purelib"), *args)
    assert "numba cache: compiling kernels" in proc.stdout
    assert "skipped (--no-system): systemctl" in proc.stdout
    index = {p.name.split(".")[0] for p in (base / "cache/numba").rglob("*.nbi")}
    assert {"chain", "meter"} <= index, sorted(index)
    engine = (base / "units/masterbox-engine.service").read_text()
    assert f"NUMBA_CACHE_DIR={base}/cache/numba" in engine
