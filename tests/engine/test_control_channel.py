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


def test_a_client_that_reads_no_replies_holds_up_no_one(engine):
    """A client that sends requests and stops reading (a hung worker) must not stall the socket for the
    others: until 2026-11-24 each reply was sent blocking from the one server thread, so 60 unread status
    replies held another client's set_params up for 47 s. Its replies wait in its own buffer now, whole
    and in order; one that lets more than MAX_PENDING pile up is dropped."""
    from firmware.control_channel import MAX_PENDING, default_socket_path

    status = (json.dumps({"cmd": "status", "values": True}) + "\n").encode()
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stuck.connect(str(default_socket_path()))
    asks = [(json.dumps({"cmd": "status", "values": True, "id": i}) + "\n").encode() for i in range(60)]
    stuck.sendall(b"".join(asks))                  # ~0.5 MB of replies: more than the socket holds
    c = EngineClient()                             # the control process's client: 1 s and it gives up
    assert wait_for(lambda: c.status()["ok"], 10, what="status beside the stuck client")
    t0 = time.monotonic()
    assert c.set_params({"out.drive_db": 4.0}) == {"out.drive_db": 4.0}
    assert time.monotonic() - t0 < 1.0
    stuck.settimeout(10)
    f = stuck.makefile("rb")
    replies = [_reply(f) for _ in range(60)]       # every reply, whole (a torn line would not parse)
    assert all(r["ok"] and "values" in r for r in replies)
    assert [r["id"] for r in replies] == list(range(60))   # in order
    size = len(json.dumps(replies[0])) + 1
    greedy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    greedy.connect(str(default_socket_path()))
    greedy.sendall(status * (2 * MAX_PENDING // size))
    time.sleep(1.0)
    greedy.settimeout(10)
    got = b""
    while chunk := greedy.recv(1 << 20):           # the server hangs up on it
        got += chunk
    assert got.count(b"\n") < 2 * MAX_PENDING // size
    assert c.status()["state"] == "running"
    for s in (stuck, greedy):
        s.close()


def test_client_without_engine_says_so(tmp_path):
    with pytest.raises(EngineUnavailable, match="not running"):
        EngineClient(tmp_path / "nothing.sock").status()
    assert MeterReader(tmp_path / "nothing.shm").read() is None
