"""A device that grants another channel count or period than asked is refused at start, with the fix.

pyalsaaudio 0.11 opens a PCM with the nearest configuration the device allows and ignores a setting it
could not make. Before the check (hw/audio/alsa.py ``granted_problem``), on these JACK PCMs: the mono one
streamed with 88 xruns in 4 s and distorted, the 4-channel one flapped between "device lost" and "back"
for ever, and a period of 32 frames on a server running 128 crashed the engine (a ValueError in the capture
ring) in a restart loop whose rollback said nothing useful. Now each is a start failure like a wrong rate:
one line on stderr, and the record the System page's rollback shows (firmware/start_failure.py).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.engine.conftest import engine_cmd

JACK_PCMS = """
pcm.jmono {
  type jack
  playback_ports { 0 system:playback_1 }
  capture_ports { 0 system:capture_1 }
}
pcm.jquad {
  type jack
  playback_ports { 0 system:playback_1 1 system:playback_2 2 system:playback_1 3 system:playback_2 }
  capture_ports { 0 system:capture_1 1 system:capture_2 2 system:capture_1 3 system:capture_2 }
}
pcm.jst {
  type jack
  playback_ports { 0 system:playback_1 1 system:playback_2 }
  capture_ports { 0 system:capture_1 1 system:capture_2 }
}
"""


@pytest.fixture
def jack_pcms(tmp_path, module_jack_server):
    """The PCMs above on one JACK server for the module (each engine here only opens them, is refused or
    streams 3 s, and exits: nothing stays on the server; each test keeps its own config, socket and meters)."""
    (tmp_path / "xdg" / "alsa").mkdir(parents=True)
    (tmp_path / "xdg" / "alsa" / "asoundrc").write_text(JACK_PCMS)
    import os

    assert module_jack_server.proc is not None and module_jack_server.proc.poll() is None, "the module's jackd died"
    return {**os.environ, **module_jack_server.env, "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
            "PYTHONUNBUFFERED": "1"}


def _start(tmp_path, env, device: str, period: int) -> tuple[subprocess.CompletedProcess | None, dict | None]:
    """Run the engine for 3 s on ``device``; its result (None if it had not ended 30 s later) and start record."""
    sock = tmp_path / "run" / "engine.sock"
    args = ["--backend", "alsa", "--device", device, "--format", "FLOAT_LE", "--period", str(period),
            "--periods", "2", "--duration", "3", "--no-realtime", "--socket", str(sock),
            "--meters", str(tmp_path / "run" / "meters.shm")]
    try:
        r = subprocess.run(engine_cmd(*args), env=env, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        r = None
    record = sock.with_name("engine.start-failure.json")
    return r, json.loads(record.read_text()) if record.exists() else None


@pytest.mark.parametrize("device, channels", [("jmono", 1), ("jquad", 4)])
def test_a_device_with_other_than_two_channels_is_a_start_failure_naming_the_fix(tmp_path, jack_pcms, device,
                                                                                 channels):
    r, record = _start(tmp_path, jack_pcms, device, 128)
    assert r is not None, "the engine ran on (it should have refused the device at once)"
    want = f"ALSA capture device '{device}' gives {channels} channel(s); masterbox needs 2: use a plughw: device"
    assert r.returncode != 0 and want in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert record is not None and want in record["error"]


@pytest.mark.parametrize("period, granted", [(32, 128), (64, 128), (200, 256)])
def test_a_period_the_device_does_not_grant_is_a_start_failure_naming_the_one_it_does(tmp_path, jack_pcms,
                                                                                      period, granted):
    r, record = _start(tmp_path, jack_pcms, "jst", period)
    assert r is not None, "the engine ran on (it should have refused the period at once)"
    want = f"ALSA capture device 'jst' grants a period of {granted} frames, not {period}: set period = {granted}"
    assert r.returncode != 0 and want in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert record is not None and want in record["error"] and record["device"]["period"] == period


def test_the_period_the_device_grants_streams(tmp_path, jack_pcms):
    r, record = _start(tmp_path, jack_pcms, "jst", 128)
    assert r is not None and r.returncode == 0, r and r.stderr[-2000:]
    assert record is None
