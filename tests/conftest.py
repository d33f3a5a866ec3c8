"""Shared fixtures. Every test gets its own data root so nothing touches ./var or the box."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    home = tmp_path / "mbhome"
    home.mkdir()
    monkeypatch.setenv("MASTERBOX_HOME", str(home))
    monkeypatch.setenv("MASTERBOX_CONFIG", str(tmp_path / "masterbox.toml"))
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    yield home


@pytest.fixture
def masterbox_cmd():
    """The installed console script (falls back to `python -m firmware.cli`)."""
    exe = Path(sys.executable).with_name("masterbox")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "firmware.cli"]


def pytest_report_header(config):
    return f"masterbox tests, MASTERBOX_HOME per test; cpu count {os.cpu_count()}"


# Tests on the JACK-paced rig assert zero xruns, which depends on the scheduler waking the audio
# thread in time. On the shared, non-preemptible VMs this suite runs on (CI included) a single
# late wake-up of jackd or the engine sometimes lands in a 60 s window, whatever the engine does,
# so such a test gets up to two more attempts; the assertion itself stays strict, and each failed
# attempt is reported in the summary ("R" / "rerun") with its xrun log.
RT_RERUNS = 2


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("realtime") and not item.get_closest_marker("flaky"):
            item.add_marker(pytest.mark.flaky(reruns=RT_RERUNS, reruns_delay=2))
