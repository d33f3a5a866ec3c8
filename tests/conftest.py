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
