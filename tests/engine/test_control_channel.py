"""The control socket against a running engine (``masterbox engine --backend sim``, paced).

Every command through :class:`EngineClient`, and every kind of rubbish a client can send on
the raw socket: each is answered or dropped with a logged error while the loop runs on
without an xrun.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import pytest
import soundfile as sf

from firmware import paths
from firmware.control_client import EngineClient, EngineError, EngineUnavailable
from firmware.meters_shm import MeterReader
from tests.engine.conftest import engine_cmd, read_stats, wait_for


@pytest.fixture
def engine(tmp_path, host_witness):
    stats = tmp_path / "stats.json"
    proc = subprocess.Popen(engine_cmd("--backend", "sim", "--wait-ready", "--duration", "12", "--stats-json",
                                       str(stats)),
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    reader = MeterReader()
    try:
        wait_for(lambda: (reader.read() or {}).get("state") == "running", 240, what="the engine")
        yield proc, stats, reader, host_witness
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.communicate(timeout=30)


def _reply(f) -> dict:
    line = f.readline()
    assert line, "no reply"
    return json.loads(line)


@pytest.mark.realtime  # paced in real time and asserts zero xruns
def test_commands_and_rubbish_on_one_running_engine(engine, tmp_path):
    proc, stats_path, reader, witness = engine
    marks = {}
    c = EngineClient()
    marks["start"] = time.monotonic()
    hello = c.hello()
    assert hello["protocol"] == 1 and "set_params" in hello["commands"]
    st = c.status()
    assert st["state"] == "running" and st["device"]["backend"] == "sim"

    # parameters: applied whole, or refused whole with every reason
    assert c.set_params({"eq1.gain_db": 3, "eq1.on": "on"}) == {"eq1.gain_db": 3.0, "eq1.on": True}
    with pytest.raises(EngineError) as e:
        c.set_params({"eq2.gain_db": 99, "nope": 1})
    assert set(e.value.reply["fields"]) == {"eq2.gain_db", "nope"}
    assert c.request("status", values=True)["values"]["eq2.gain_db"] == 0.0

    assert c.bypass(True, level_match=False)["bypass"] is True
    wait_for(lambda: reader.read()["bypass"] is True, 2, what="bypass in the meters")
    c.bypass(False)
    # the equal-loudness compare: switched on and off; the same settings are never turned down
    assert c.compare(True)["compare"] is True
    time.sleep(0.5)
    assert reader.read()["compare_gain_db"] == 0.0
    assert c.compare(False)["compare"] is False
    c.meters_reset()

    marks["learn"] = time.monotonic()
    c.learn_start()
    assert reader is not None and wait_for(lambda: reader.read()["learning"], 2, what="learning flag")
    time.sleep(1.5)
    learned = c.learn_stop()
    assert learned["seconds"] >= 1.4 and learned["input"]["integrated_lufs"] is not None

    # a capture of the output, written by the capture writer
    marks["capture"] = time.monotonic()
    cap = c.capture_start(tap="output", fmt="PCM_24", preset="test")
    assert cap
    wait_for(lambda: reader.read()["capturing"], 2, what="capturing flag")
    time.sleep(1.0)
    marks["capture_stop"] = time.monotonic()
    done = c.capture_stop()
    assert done
    wavs = sorted(paths.captures_dir().glob("*.wav"))
    assert wavs, "no capture file"
    info = sf.info(str(wavs[0]))
    assert info.samplerate == 48000 and info.channels == 2 and info.duration >= 0.9
    with pytest.raises(EngineError):
        c.capture_stop()

    marks["rubbish"] = time.monotonic()
    # rubbish on a raw connection: every line answered with an error, the connection stays usable
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(paths.run_dir() / "engine.sock"))
    s.settimeout(5)
    f = s.makefile("rb")
    for bad in (b"this is not json\n", b"[1, 2, 3]\n", b'{"cmd": "warp_speed"}\n', b'{"no_cmd": 1}\n',
                b'{"cmd": "set_params", "params": "loud"}\n', b'{"cmd": "status", "v": 99}\n',
                b'{"cmd": "bypass", "on": "yes"}\n', b'{"cmd": "compare", "on": 1}\n', b"\xff\xfe\xfd\n"):
        s.sendall(bad)
        r = _reply(f)
        assert r["ok"] is False and r["error"], bad
    marks["huge"] = time.monotonic()
    # a huge line (2 MiB without a newline, then one): one error, then the stream is in sync again
    s.sendall(b'{"cmd": "status", "pad": "' + b"x" * (2 * 1024 * 1024))
    s.sendall(b'"}\n{"cmd": "hello", "id": 7}\n')
    r = _reply(f)
    assert r["ok"] is False and "longer than" in r["error"]
    r = _reply(f)
    assert r["ok"] is True and r["id"] == 7
    s.close()
    # half a line, then hang up
    s2 = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s2.connect(str(paths.run_dir() / "engine.sock"))
    s2.sendall(b'{"cmd": "set_params", "params": {"eq1.gain_db": ')
    s2.close()
    marks["clients"] = time.monotonic()
    # many clients opening and closing
    for _ in range(50):
        with EngineClient() as k:
            k.status()

    assert c.status()["values"] is None
    assert c.request("status", values=True)["values"]["eq1.gain_db"] == 3.0  # the half line changed nothing
    c.stop_engine()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    stats = read_stats(stats_path)
    marks = {k: round(v - stats["started_monotonic"], 3) for k, v in marks.items()}
    witness.stop()
    # no xrun of ours (the machine's own stalls excuse theirs: tests/host_witness.py)
    assert witness.ours(stats) == [], (stats["xrun_log"], stats["max_block_at_s"], stats["block_time_us"], marks,
                                       witness.summary())
    for text in ("not JSON", "unknown command", "longer than", "without a newline"):
        assert text in err, text
    c.close()


def test_client_without_engine_says_so(tmp_path):
    with pytest.raises(EngineUnavailable, match="not running"):
        EngineClient(tmp_path / "nothing.sock").status()
    assert MeterReader(tmp_path / "nothing.shm").read() is None
