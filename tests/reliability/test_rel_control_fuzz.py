"""Control-channel fuzzing (issue 9, hostile input) against a real ``masterbox engine --backend sim``.

Hypothesis writes request lines -- arbitrary JSON, objects with real command names and arbitrary
fields, parameter sets mixing real ids with wrong values, NaN/Infinity tokens, hostile capture
names, invalid UTF-8, binary -- over one connection, and checks for each:

* one reply line per request line, a strict JSON object (no NaN/Infinity token) with a boolean ``ok``
  (and an ``error`` string when false); the ``id`` is echoed;
* a line Python's json takes but strict JSON does not (NaN, Infinity, 1e999 anywhere, the ``id`` too) is
  refused whole as not JSON, with no ``id``;
* no programming error leaks out as the reply (``TypeError: ...``, ``KeyError: ...``: the engine's
  equivalent of a 500);
* a refused ``set_params``/``bypass`` changes no parameter (all or nothing), checked against
  ``status`` with ``values``;
* files appear only inside the captures folder, whatever ``preset`` a capture is given.

At the end: the engine ran throughout (blocks advanced, no dropout, no device error) and stopped
cleanly with its stats written. Over-long lines, half lines and 50 clients at once are covered by
tests/engine/test_control_channel.py (not repeated here).
``stop`` and ``stall`` are left out of the generated commands (they do what they are for).
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsp import schema

EXAMPLES = int(os.environ.get("MB_FUZZ_EXAMPLES", "12")) * 6
CMDS = ["hello", "status", "set_params", "bypass", "compare", "meters_reset", "capture_start", "capture_stop",
        "learn_start", "learn_stop"]
PROGRAMMING_ERROR = re.compile(r"^(TypeError|KeyError|AttributeError|IndexError|ZeroDivisionError|NameError|"
                               r"UnboundLocalError|RecursionError|OverflowError|AssertionError|ValueError)\b")


def strict_json(text):
    """``text`` parsed as strict JSON (RFC 8259, finite doubles), as the engine reads a request; ValueError if not."""
    def no_constant(token):
        raise ValueError(f"{token} is not JSON")

    def finite(number):
        if not math.isfinite(float(number)):
            raise ValueError(f"{number} is too large")
        return float(number)

    return json.loads(text, parse_constant=no_constant, parse_float=finite)


class Conn:
    def __init__(self, path: Path, timeout: float = 5.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(str(path))
        self.f = self.s.makefile("rb")

    def send_raw(self, data: bytes) -> None:
        self.s.sendall(data)

    def reply(self) -> dict:
        line = self.f.readline()
        assert line.endswith(b"\n"), f"no reply line (got {line!r})"
        return strict_json(line)

    def ask(self, obj) -> dict:
        self.send_raw(json.dumps(obj).encode() + b"\n")
        return self.reply()

    def close(self):
        self.f.close()
        self.s.close()


@pytest.fixture
def engine(tmp_path, masterbox_cmd):
    run = tmp_path / "run"
    run.mkdir()
    caps = Path(os.environ["MASTERBOX_HOME"]) / "captures"
    stats = tmp_path / "stats.json"
    sock = run / "engine.sock"
    proc = subprocess.Popen([*masterbox_cmd, "engine", "--backend", "sim", "--quiet",
                             "--socket", str(sock), "--meters", str(run / "meters.shm"), "--duration", "300",
                             "--stats-json", str(stats)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            if sock.exists():
                try:
                    c = Conn(sock)
                    if c.ask({"cmd": "status"}).get("state") == "running":
                        c.close()
                        break
                    c.close()
                except OSError:
                    pass
            assert time.monotonic() < deadline, "engine did not come up"
            time.sleep(0.1)
        yield proc, sock, stats, caps, tmp_path
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait(10)


json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                        st.text(max_size=40))
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12)
ids = st.sampled_from([p.id for p in schema.PARAMS])
hostile_names = st.sampled_from(["../../../etc/passwd", "/tmp/x", "..", "a/b", "\x00", "con", "名前", "x" * 300,
                                 "$(reboot)", "-rf", "preset\nname", ".hidden"])


@st.composite
def request(draw):
    kind = draw(st.integers(0, 10))
    if kind == 0:
        return json.dumps(draw(json_value)).encode()
    if kind == 1:
        return draw(st.binary(max_size=200)).replace(b"\n", b" ")
    if kind == 2:  # Python's json accepts these tokens; JSON does not
        tok = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999"]))
        pid = draw(ids)
        return draw(st.sampled_from([
            f'{{"cmd": "set_params", "params": {{"{pid}": {tok}}}}}',
            f'{{"cmd": "capture_start", "max_seconds": {tok}}}',
            f'{{"cmd": "bypass", "on": true, "level_match": {tok}}}',
            f'{{"cmd": "status", "v": {tok}}}'])).encode()
    req = {"cmd": draw(st.sampled_from(CMDS))}
    if kind in (3, 4):  # set_params with a mix of good and bad values
        params = draw(st.dictionaries(st.one_of(ids, st.text(max_size=10)), json_value, max_size=5))
        for pid in draw(st.lists(ids, max_size=3)):
            p = schema.BY_ID[pid]
            params[pid] = p.default
        req = {"cmd": "set_params", "params": params}
    elif kind == 5:
        req.update({"cmd": "capture_start", "tap": draw(st.one_of(st.sampled_from(["output", "input", "both"]),
                                                                   json_value)),
                    "fmt": draw(st.one_of(st.sampled_from(["PCM_24", "FLOAT", "PCM_16", "ULAW", ""]), json_value)),
                    "max_seconds": draw(st.one_of(st.none(), st.floats(-10, 1e12, allow_nan=False), json_value)),
                    "preset": draw(st.one_of(hostile_names, json_value))})
    elif kind == 6:  # the switches, well formed or nearly
        req = {"cmd": draw(st.sampled_from(["bypass", "compare"])), "on": draw(st.one_of(st.booleans(), json_value))}
    elif kind == 10:  # the listening mode and the As-streamed preview, by name
        good = draw(st.booleans())          # half of them a name the engine knows, as for the switches
        req = draw(st.sampled_from([
            {"cmd": "monitor", "mode": draw(st.sampled_from(schema.MONITOR_MODES) if good
                                            else st.one_of(st.just("MONO"), json_value))},
            {"cmd": "preview", "service": draw(st.sampled_from(["off", "spotify", "tidal"]) if good
                                               else st.one_of(st.just("napster"), json_value))}]))
    else:
        req.update(draw(st.dictionaries(st.sampled_from(["on", "level_match", "values", "params", "tap", "v", "id",
                                                         "max_seconds", "fmt", "mode", "service"]), json_value,
                                        max_size=3)))
    if draw(st.booleans()):
        req["id"] = draw(json_value)
    return json.dumps(req).encode()


def files_outside(caps: Path, tmp: Path, before: set) -> set:
    home = caps.parent
    now = {p for p in home.rglob("*") if p.is_file()} | {p for p in tmp.glob("*") if p.is_file()}
    return {p for p in now - before if caps not in p.parents}


def test_fuzzed_requests_get_replies_refusals_change_nothing_audio_runs(engine):
    proc, sock, stats, caps, tmp = engine
    conn = Conn(sock)
    home = caps.parent
    files_before = {p for p in home.rglob("*") if p.is_file()} | {p for p in tmp.glob("*") if p.is_file()}
    st0 = conn.ask({"cmd": "status"})
    blocks0, t0 = st0["blocks"], time.monotonic()
    counts = {"ok": 0, "refused": 0}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(line=request())
    def one(line):
        st_before = conn.ask({"cmd": "status", "values": True})
        before = st_before["values"]
        conn.send_raw(line + b"\n")
        if not line.strip():
            return  # an empty line gets no reply, by design
        r = conn.reply()
        assert isinstance(r, dict) and isinstance(r.get("ok"), bool), (line, r)
        counts["ok" if r["ok"] else "refused"] += 1
        try:
            req = strict_json(line)
        except ValueError:                  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity/1e999
            req = None
            try:
                json.loads(line)
                loose = True                # Python's json takes it: a NaN/Infinity token or 1e999 in it
            except ValueError:
                loose = False
            if loose:
                assert r["ok"] is False and r["error"].startswith("not a JSON object") and "id" not in r, (line, r)
        if isinstance(req, dict) and "id" in req:
            assert r.get("id") == req["id"], (line, r)
        if not r["ok"]:
            assert isinstance(r.get("error"), str) and r["error"], (line, r)
            assert not PROGRAMMING_ERROR.match(r["error"]), (line, r)
            if isinstance(req, dict) and req.get("cmd") in ("set_params", "bypass"):
                after = conn.ask({"cmd": "status", "values": True})["values"]
                assert after == before, (line, r)
            if isinstance(req, dict) and req.get("cmd") in ("monitor", "preview"):
                st_after = conn.ask({"cmd": "status"})
                assert (st_after["monitor"], st_after["preview"]) == (st_before["monitor"], st_before["preview"]), \
                    (line, r)
        else:
            after = conn.ask({"cmd": "status", "values": True})["values"]
            assert all(math.isfinite(v) for v in after.values() if isinstance(v, float)), (line, after)
        st_ = conn.ask({"cmd": "status"})
        if st_.get("capturing"):
            conn.ask({"cmd": "capture_stop"})
        assert not files_outside(caps, tmp, files_before), (line, files_outside(caps, tmp, files_before))

    one()
    # both kinds of answer were exercised (of the 72 requests, 12-31 were accepted in 11 runs on
    # 2026-11-24; a floor of 10 failed one CI run at 9, so the floor is 5: about 1 run in 10,000)
    assert counts["ok"] >= 5 and counts["refused"] >= 5, counts

    # over at least 3 s: the fuzzing alone may take under a second, where one restart of the sim
    # clock after a late wake-up of this shared VM (see below) would be more than the 10 % allowed
    time.sleep(max(0.0, 3.0 - (time.monotonic() - t0)))
    final = conn.ask({"cmd": "status", "values": True})
    wall = time.monotonic() - t0
    assert final["state"] == "running" and final["device_errors"] == 0
    # the audio kept flowing at its pace all along (the sim clock restarts after an xrun, so lost time
    # would show as missing blocks)
    streamed = (final["blocks"] - blocks0) * final["device"]["period"] / final["device"]["rate"]
    assert streamed >= 0.9 * wall, (streamed, wall)
    assert conn.ask({"cmd": "stop"})["stopping"] is True
    conn.close()
    assert proc.wait(20) == 0
    s = json.loads(stats.read_text())
    # No assertion on xruns here: the sim backend's sleep-paced clock xruns on this shared VM even
    # when idle (77 in 25 s with SCHED_FIFO and nothing else talking to it, 2026-11-22). Dropouts
    # under load are measured on the JACK-paced rig (test_rel_load.py).
    assert s["device_errors"] == 0, s
