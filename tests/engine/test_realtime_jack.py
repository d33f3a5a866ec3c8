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
from tests.engine.conftest import JACK_PERIOD, JACK_RATE, programme, read_stats, start_engine, wait_for, xrun_loss_s

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


def test_sixty_seconds_at_128_frames_without_an_xrun(tmp_path, alsa_rig, jack_server, host_witness):
    """Issue 4's stream: no xrun of ours (xruns the machine's own stalls explain are printed and
    allowed: tests/host_witness.py)."""
    env = _rig_env(alsa_rig, jack_server)
    stats_path = tmp_path / "stats.json"
    proc = start_engine(_engine_args(stats_path, 60.0), env)
    reader = MeterReader()
    wait_for(lambda: _running_meters(reader), 240, what="the engine to run")
    t0 = time.monotonic()
    _finish(proc, 120)
    wall = time.monotonic() - t0
    host_witness.stop()
    stats = read_stats(stats_path)
    ours = host_witness.ours(stats)
    print(f"\n    60 s at 128 frames: xruns {stats['xruns']}, of them ours {len(ours)}; "
          f"{host_witness.summary(wall)}; jackd's clock late {len(jack_server.clock_stalls())} times; "
          f"block p99.9 {stats['block_time_us']['p999']} us, max load {stats['max_load']}")
    assert ours == [], (ours, stats, host_witness.summary(wall))
    assert stats["device_errors"] == 0 and stats["dropouts"] == stats["xruns"]
    # paced by JACK's clock: 60 s of audio took 60 s (not faster, not slower), less what xruns lost
    streamed_s = stats["blocks"] * JACK_PERIOD / JACK_RATE
    lost_s = xrun_loss_s(stats["xruns"])
    assert 59.5 - lost_s <= streamed_s <= 60.5, (streamed_s, lost_s)
    assert 59.0 <= wall <= 62.0, wall
    assert stats["io_latency_samples"] == 256
    # what reached the device is what the loop wrote (an xrun may drop what the buffer held)
    played = alsa_rig.outfile.stat().st_size // 8
    assert abs(played - stats["blocks"] * JACK_PERIOD) <= (4 + 2 * stats["xruns"]) * JACK_PERIOD, (played, stats)


def test_stalled_loop_xrun_is_counted_and_recovered(tmp_path, alsa_rig, jack_server, host_witness):
    """The loop overruns (the engine's ``stall`` command spins it for 60 ms, as a block whose
    processing took too long would): the xrun is counted, the stream goes on by itself, and the
    host witness, running above the loop's priority, does not mistake the overrun for the host's."""
    env = _rig_env(alsa_rig, jack_server)
    stats_path = tmp_path / "stats.json"
    proc = start_engine(_engine_args(stats_path, 4.0), env)
    reader = MeterReader()
    wait_for(lambda: _running_meters(reader), 240, what="the engine to run")
    time.sleep(0.5)
    with EngineClient() as c:
        t_stall = time.monotonic()
        c.request("stall", ms=60)
        before = reader.read()["blocks"]
        wait_for(lambda: reader.read()["xruns"] >= 1, 3, what="the xrun to be counted")
        # the stream goes on by itself
        wait_for(lambda: reader.read()["blocks"] > before + 200, 3, what="blocks after the xrun")
        assert c.status()["state"] == "running"
    _finish(proc, 30)
    host_witness.stop()
    stats = read_stats(stats_path)
    assert stats["device_errors"] == 0
    # the overrun's xrun, noticed after the 60 ms spin (the request takes a block to land)
    window = (t_stall, t_stall + 0.5)
    overrun = [x for x in stats["xrun_log"] if window[0] <= x[1] <= window[1]]
    assert overrun, (stats["xrun_log"], t_stall)
    # the witness kept running on every CPU while the loop spun above everything but it
    assert not [st for st in host_witness.during(overrun[0][1] - 0.07, overrun[0][1]) if st[1] - st[0] >= 0.03], \
        host_witness.during(overrun[0][1] - 0.07, overrun[0][1])
    # any other xrun is the host's
    others = [x for x in host_witness.ours(stats) if x not in overrun]
    assert others == [], (others, host_witness.summary())
    assert stats["blocks"] * JACK_PERIOD / JACK_RATE > 3.8 - xrun_loss_s(len(stats["xrun_log"]))


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
