"""Numeric request fields of the control protocol take a JSON number, never ``true``/``false``.

Python's ``True`` is an ``int`` equal to 1, so ``{"cmd": "stall", "ms": true}`` was taken as a 1 ms stall and
``"v": true`` as protocol version 1. In process, on :meth:`ControlServer.handle_line` with a stand-in engine
that records what reached it (the running engine's suite is tests/engine/test_control_channel.py). NaN and
Infinity are not JSON: a line carrying one is refused whole (tests/engine/test_control_strict_json.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from firmware.control_channel import ControlServer, is_number


class RecordingEngine:
    """What the commands under test read of an engine, and a record of what reached it."""

    rate = 48000
    capture = None
    last_capture = None
    capture_ring = np.zeros((4096, 4))
    values = {"lim.ceiling_dbtp": -1.0}

    def __init__(self):
        self.stalls: list[float] = []
        self.references: list[tuple] = []

    def stall_once(self, seconds):
        self.stalls.append(seconds)

    def reference_status(self):
        return {"integrated_lufs": -14.0, "true_peak_dbtp": -1.0}

    def set_reference(self, on, gain_db, match):
        self.references.append((on, gain_db))


def _ask(server, **req) -> dict:
    return server.handle_line(json.dumps({"id": 3, **req}).encode())


@pytest.fixture
def server(tmp_path):
    return ControlServer(RecordingEngine(), tmp_path / "engine.sock", capture_dir=tmp_path / "captures")


def test_is_number_refuses_bools_and_non_finite_values():
    assert all(is_number(v) for v in (0, 1, -3, 2.5, 10 ** 400, -0.0))
    assert not any(is_number(v) for v in (True, False, None, "1", [1], {"a": 1}, float("nan"), float("inf")))


@pytest.mark.parametrize("ms", [True, False, "5", None, 0, -1, 2001, 10 ** 400])
def test_stall_refuses_what_is_not_a_number_of_ms_in_range(server, ms):
    reply = _ask(server, cmd="stall", ms=ms)
    assert reply["ok"] is False and reply["id"] == 3, reply
    assert reply["error"] == 'stall needs "ms" in 0..2000'
    assert server.engine.stalls == []


def test_stall_takes_a_number(server):
    assert _ask(server, cmd="stall", ms=5) == {"ok": True, "stall_ms": 5, "id": 3}
    assert _ask(server, cmd="stall", ms=2.5)["ok"] is True
    assert server.engine.stalls == [0.005, 0.0025]


@pytest.mark.parametrize("v", [True, False, 1.0, 0, -1, 2, "1", None])
def test_a_protocol_version_must_be_an_integer_the_engine_speaks(server, v):
    reply = _ask(server, cmd="hello", v=v)
    assert reply["ok"] is False and reply["id"] == 3, reply
    assert reply["error"] == f"protocol version {json.dumps(v)} is not supported; this engine speaks 1"


def test_protocol_version_1_and_none_given_are_served(server):
    assert _ask(server, cmd="hello", v=1)["ok"] is True
    assert _ask(server, cmd="hello")["ok"] is True


@pytest.mark.parametrize("gain_db", [True, False, "3", 25, -24.5])
def test_reference_gain_must_be_a_number_of_db(server, gain_db):
    reply = _ask(server, cmd="reference", on=True, gain_db=gain_db)
    assert reply["ok"] is False and reply["error"].startswith("gain_db must be a number of dB in -24..24"), reply
    assert server.engine.references == []
    assert _ask(server, cmd="reference", on=True, gain_db=-3)["ok"] is True
    assert server.engine.references == [(True, -3.0)]


@pytest.mark.parametrize("max_seconds", [True, False, "60", 0, -5, 1e305, 10 ** 400])
def test_capture_max_seconds_must_be_a_positive_number(server, tmp_path, max_seconds):
    """(1e305 and 10**400 s overflowed a float in the capture writer: "OverflowError: ..." came back, and for
    10**400 only after the capture had started, so a capture ran that the client was told had failed.)"""
    reply = _ask(server, cmd="capture_start", max_seconds=max_seconds)
    assert reply == {"ok": False, "error": "max_seconds must be a positive number up to 1e+09, or null", "id": 3}
    assert server.engine.capture is None and server.engine.last_capture is None
    assert not (tmp_path / "captures").exists()
