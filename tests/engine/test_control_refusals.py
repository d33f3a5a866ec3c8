"""capture_start requests the engine cannot serve are plain refusals: a reason, no exception type, no traceback.

In process, on :meth:`ControlServer.handle_line` (what the server thread calls for each line) with a stand-in
engine; the running engine's own suite is tests/engine/test_control_channel.py.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from firmware.control_channel import ControlServer


class IdleEngine:
    """What capture_start reads of an engine: no capture running, its rate and the capture ring."""

    rate = 48000
    capture = None
    last_capture = None
    capture_ring = np.zeros((4096, 4))


def _ask(server, caplog, **req) -> dict:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="masterbox.control_channel"):
        return server.handle_line(json.dumps({"cmd": "capture_start", "id": 7, **req}).encode())


@pytest.mark.parametrize("fmt", ["PCM_16", "pcm_24", "", "ULAW", 24, None, ["FLOAT"], {"x": 1}])
def test_an_unknown_capture_format_is_refused_naming_the_formats(tmp_path, caplog, fmt):
    server = ControlServer(IdleEngine(), tmp_path / "engine.sock", capture_dir=tmp_path / "captures")
    reply = _ask(server, caplog, fmt=fmt)
    assert reply["ok"] is False and reply["id"] == 7
    assert reply["error"].startswith("fmt must be one of PCM_24, FLOAT"), reply
    assert "Error" not in reply["error"]  # no Python exception's name (ValueError: ...) in the reply
    assert not any(r.exc_info for r in caplog.records), "a refusal logged a traceback"
    assert [r.levelname for r in caplog.records] == ["ERROR"]  # logged once, as every refused request is
    assert not (tmp_path / "captures").exists() or not any((tmp_path / "captures").iterdir())
    assert server.errors == 1


def test_a_captures_folder_that_cannot_be_made_is_a_refusal_not_a_traceback(tmp_path, caplog):
    (tmp_path / "file").write_text("not a folder")
    server = ControlServer(IdleEngine(), tmp_path / "engine.sock", capture_dir=tmp_path / "file" / "captures")
    reply = _ask(server, caplog, fmt="FLOAT")
    assert reply["ok"] is False and reply["error"].startswith(f"cannot record into {tmp_path / 'file' / 'captures'}: ")
    assert "Error" not in reply["error"], reply
    assert not any(r.exc_info for r in caplog.records)


def test_a_capture_says_its_settings_were_modified_since_the_recall(tmp_path, caplog):
    """``"modified": true`` (the control process sends it when the settings changed since the recall) makes
    the capture's Broadcast Wave description say "preset NAME (modified)", as a master of them does;
    anything but true or false is refused, nothing recorded."""
    from firmware import bwf

    engine = IdleEngine()
    server = ControlServer(engine, tmp_path / "engine.sock", capture_dir=tmp_path / "captures")
    reply = _ask(server, caplog, preset="loud", modified="yes")
    assert reply["ok"] is False and reply["error"].startswith("modified must be true or false"), reply
    assert engine.capture is None
    reply = _ask(server, caplog, preset="loud", modified=True)
    assert reply["ok"] is True, reply
    st = engine.capture.stop()
    (f,) = st["files"]
    assert bwf.read(f).description == "masterbox capture, output (after the chain), preset loud (modified)"
