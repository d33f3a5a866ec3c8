"""systemd/install.sh and uninstall.sh, run for real into a temporary root."""

from __future__ import annotations

import subprocess
import sysconfig

import pytest

from .conftest import BASE_PYTHON, INSTALL, REPO, UNINSTALL, UNITS, install_into, run_script


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
    stale = root / "opt/masterbox/src/firmware/removed_in_this_release.py"
    stale.write_text("")

    proc = install_into(root, "--no-warm")

    assert "upgrading in place" in proc.stdout
    assert "config kept" in proc.stdout
    for path, text in mine.items():
        assert path.read_text() == text, path
    assert config.read_text() == "# edited on the box\n[audio]\nperiod = 256\n"
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
    assert "NUMBA_CACHE_DIR=/data/cache/numba" in engine and "User=mbox" in engine
    assert "/opt/masterbox" not in engine and "/var/lib/masterbox" not in engine
    assert (root / "srv/mb/venv/bin/python").exists() and (root / "data/mb/presets").is_dir()
    assert (root / "data/etc/config.toml").is_file()
    assert 'subject.user == "mbox"' in (root / "etc/polkit-1/rules.d/50-masterbox.rules").read_text()


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
