"""Real-time behaviour on the paced rig: a JACK dummy server behind the ALSA ``type jack`` PCM.

The engine runs as ``masterbox engine --backend alsa`` on ``type file`` PCMs whose slave is the
JACK plugin, so every period is paced by JACK's clock exactly as a sound card would pace it.
These tests take real time (the 60 s stream is the longest test of the engine suite); they are
marked ``realtime`` but run in the default suite.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from firmware.control_client import EngineClient
from firmware.meters_shm import MeterReader
from hw.audio.formats import to_bytes
from tests.engine.conftest import JACK_PERIOD, JACK_RATE, programme, read_stats, start_engine, wait_for

pytestmark = pytest.mark.realtime


def _rig_env(alsa_rig, jack_server) -> dict:
    alsa_rig.write(slave="jack")
    alsa_rig.infile.write_bytes(to_bytes(programme(2.0, JACK_RATE, seed=2), "S32_LE"))
    env = dict(alsa_rig.env)
    env.update({k: jack_server.env[k] for k in ("JACK_DEFAULT_SERVER", "JACK_NO_AUDIO_RESERVATION",
                                                "JACK_NO_START_SERVER")})
    return env


def _engine_args(stats, duration: float) -> list[str]:
    return ["--backend", "alsa", "--capture-device", "mbin", "--playback-device", "mbout", "--rate", str(JACK_RATE),
            "--period", str(JACK_PERIOD), "--periods", "2", "--format", "S32_LE", "--preset", "streaming",
            "--wait-ready", "--duration", str(duration), "--stats-json", str(stats)]


def _finish(proc, timeout: float) -> str:
    try:
        _, err = proc.communicate(timeout=timeout)
    except Exception:
        proc.kill()
        proc.communicate()
        raise
    assert proc.returncode == 0, err[-3000:]
    return err


def _running_meters(reader: MeterReader):
    m = reader.read()
    return m if m and m["state"] == "running" else None


def test_sixty_seconds_at_128_frames_without_an_xrun(tmp_path, alsa_rig, jack_server):
    env = _rig_env(alsa_rig, jack_server)
    stats_path = tmp_path / "stats.json"
    proc = start_engine(_engine_args(stats_path, 60.0), env)
    reader = MeterReader()
    wait_for(lambda: _running_meters(reader), 240, what="the engine to run")
    t0 = time.monotonic()
    _finish(proc, 120)
    wall = time.monotonic() - t0
    stats = read_stats(stats_path)
    stalls = jack_server.clock_stalls()
    print("engine xruns:", stats["xrun_log"], "jackd clock stalls:", stalls)
    assert stats["xruns"] == 0, (stats, stalls)
    assert stats["device_errors"] == 0 and stats["dropouts"] == 0
    # paced by JACK's clock: 60 s of audio took 60 s (not faster, not slower)
    streamed_s = stats["blocks"] * JACK_PERIOD / JACK_RATE
    assert 59.5 <= streamed_s <= 60.5, streamed_s
    assert 59.0 <= wall <= 62.0, wall
    assert stats["io_latency_samples"] == 256
    assert stats["max_load"] < 1.0
    played = alsa_rig.outfile.stat().st_size // 8
    assert abs(played - stats["blocks"] * JACK_PERIOD) <= 4 * JACK_PERIOD


def test_stalled_loop_xrun_is_counted_and_recovered(tmp_path, alsa_rig, jack_server):
    env = _rig_env(alsa_rig, jack_server)
    stats_path = tmp_path / "stats.json"
    proc = start_engine(_engine_args(stats_path, 4.0), env)
    reader = MeterReader()
    wait_for(lambda: _running_meters(reader), 240, what="the engine to run")
    time.sleep(0.5)
    with EngineClient() as c:
        c.request("stall", ms=60)
        before = reader.read()["blocks"]
        wait_for(lambda: reader.read()["xruns"] >= 1, 3, what="the xrun to be counted")
        # the stream goes on by itself
        wait_for(lambda: reader.read()["blocks"] > before + 200, 3, what="blocks after the xrun")
        assert c.status()["state"] == "running"
    _finish(proc, 30)
    stats = read_stats(stats_path)
    assert stats["xruns"] == 1, stats
    assert stats["device_errors"] == 0
    assert stats["blocks"] * JACK_PERIOD / JACK_RATE > 3.8  # only the stalled periods are missing


def test_device_removed_mid_stream_comes_back_by_itself(tmp_path, alsa_rig, jack_server):
    env = _rig_env(alsa_rig, jack_server)
    stats_path = tmp_path / "stats.json"
    proc = start_engine(_engine_args(stats_path, 9.0), env)
    reader = MeterReader()
    wait_for(lambda: _running_meters(reader), 240, what="the engine to run")
    time.sleep(0.5)
    jack_server.kill()  # the "USB cable" is pulled
    wait_for(lambda: (reader.read() or {}).get("state") == "device_lost", 5, what="device_lost")
    time.sleep(1.5)
    jack_server.start()
    m = wait_for(lambda: _running_meters(reader), 6, what="the stream to resume")
    wait_for(lambda: reader.read()["blocks"] > m["blocks"] + 300, 5, what="blocks after the device came back")
    with EngineClient() as c:  # seen: no need to stream out the rest of --duration
        c.stop_engine()
    err = _finish(proc, 30)
    stats = read_stats(stats_path)
    assert stats["device_errors"] >= 1 and stats["dropouts"] >= 1
    assert stats["reopen_attempts"] >= 1
    assert "audio device lost" in err and "audio device back" in err
    assert np.isfinite(stats["max_load"])
