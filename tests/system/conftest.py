"""Fixtures for the system tests: an installation into a temporary root, shared by the tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "systemd" / "install.sh"
UNINSTALL = REPO / "systemd" / "uninstall.sh"
# The interpreter this venv was made from: a venv made from a venv's python would nest oddly.
BASE_PYTHON = str(Path(sys._base_executable)) if hasattr(sys, "_base_executable") else sys.executable
UNITS = ("masterbox-engine.service", "masterbox-control.service", "masterbox-cpu-performance.service")


def run_script(script: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script.name} {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def install_into(root: Path, *extra: str) -> subprocess.CompletedProcess:
    """The real installer into ``root``: nothing on this machine is touched (--no-system), and the new
    venv borrows this venv's packages rather than downloading numba and friends again."""
    site = sysconfig.get_path("purelib")
    return run_script(INSTALL, "--root", str(root), "--no-system", "--python", BASE_PYTHON,
                      "--reuse-site-packages", site, *extra)


@pytest.fixture(scope="session")
def installed_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("boxroot")
    proc = install_into(root)
    (root / "install.log").write_text(proc.stdout + proc.stderr)
    return root


@pytest.fixture(scope="session")
def verify_root(installed_root) -> Path:
    """The installed tree plus the distribution's own units (targets) that ours depend on, and a
    shell for the governor one-shot, so `systemd-analyze verify --root` sees a complete system."""
    dist_units = Path("/usr/lib/systemd/system")
    target = installed_root / "usr/lib/systemd/system"
    if not target.exists():
        shutil.copytree(dist_units, target, symlinks=True)
    _provide_inside(installed_root, Path("/bin/sh"))
    # The venv's python is a symlink to the interpreter it was made from, outside the root.
    _provide_inside(installed_root, Path("/opt/masterbox/venv/bin/python"))
    return installed_root


def _provide_inside(root: Path, path: Path) -> None:
    """Make ``path`` resolve to an executable inside ``root``, following symlinks as the root sees
    them and copying the host's executable where the chain leaves the root."""
    for _ in range(40):
        inside = root / path.relative_to("/")
        if inside.is_symlink():
            link = Path(os.readlink(inside))
            path = link if link.is_absolute() else (path.parent / link)
            continue
        if not inside.exists():
            inside.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path.resolve(), inside)
        return


@pytest.fixture(scope="session")
def warm_kernels():
    """What `make demo` / `make test` do before anything runs: the numba cache is compiled. (With a
    cold cache the engine first compiles for a minute, passing audio dry with no meters meanwhile.)"""
    subprocess.run([sys.executable, "-m", "firmware.warmup", "--quiet"], check=True, timeout=900, cwd=REPO)
