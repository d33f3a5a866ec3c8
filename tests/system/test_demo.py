"""`masterbox demo` as a person runs it: meters move over the HTTP API within 10 s, a killed engine
comes back, Ctrl-C stops every process."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Demo:
    """The demo in its own process group, its output collected line by line."""

    def __init__(self, cmd, cwd, port, *args):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self.started = time.monotonic()
        self.proc = subprocess.Popen([*cmd, "demo", "--port", str(port), *args], cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                     start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        jar = http.cookiejar.CookieJar()
        self.http = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def find(self, pattern: str):
        for line in list(self.lines):
            m = re.search(pattern, line)
            if m:
                return m
        return None

    def get(self, path: str, body: dict | None = None, headers: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json",
                                                                           **(headers or {})})
        with self.http.open(req, timeout=2) as r:
            return json.loads(r.read())

    def login(self, password: str) -> None:
        token = self.get("/api/v1/auth/session")["csrf_token"]
        self.get("/api/v1/auth/login", {"password": password}, {"X-CSRF-Token": token})

    def meters(self) -> dict | None:
        return self.get("/api/v1/meters")["meters"]

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)


def _until(cond, timeout, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = cond()
        except OSError:  # includes urllib's URLError and HTTPError: not up yet
            value = None
        if value:
            return value
        time.sleep(step)
    return None


def _moving(demo: Demo, key="seq"):
    """Two meter snapshots a moment apart whose sequence advanced and that carry loudness."""
    a = demo.meters()
    if not a:
        return None
    time.sleep(0.15)
    b = demo.meters()
    if b and b.get(key) != a.get(key) and b.get("out_momentary_lufs") is not None:
        return b
    return None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def demo(masterbox_cmd, tmp_path, warm_kernels):
    d = Demo(masterbox_cmd, tmp_path, _free_port())
    yield d
    d.stop()


def test_demo_meters_move_within_10_s_engine_restarts_and_ctrl_c_stops_all(demo, capsys):
    password_line = _until(lambda: demo.find(r"log in with the password: (\S+)"), 10)
    assert password_line, demo.output()
    demo.login(password_line.group(1))
    meters = _until(lambda: _moving(demo), 10 - (time.monotonic() - demo.started))
    time_to_meters = time.monotonic() - demo.started
    assert meters, f"meters did not move within 10 s of start\n{demo.output()}"

    panel = demo.get("/api/v1/panel")  # the simulated front panel was built, not left out
    assert panel.get("knobs"), panel
    assert "front panel not available" not in demo.output()
    pots = {n: k for n, k in panel["knobs"].items() if "picked_up" in k}
    assert pots and all(k["picked_up"] for k in pots.values()), pots   # the demo's shafts rest at the settings

    engine_pid = int(demo.find(r"engine started \(pid (\d+)\)").group(1))
    control_pid = int(demo.find(r"control started \(pid (\d+)\)").group(1))
    with open(f"/proc/{control_pid}/maps") as f:
        assert "numba" not in f.read()  # the control process never loads numba
    with open(f"/proc/{engine_pid}/maps") as f:
        assert "numba" in f.read()  # (while the engine does: the check can see it)
    t0 = time.monotonic()
    os.kill(engine_pid, signal.SIGKILL)
    restarted = _until(lambda: demo.find(r"engine restarted \(pid (\d+)\)"), 3, step=0.02)
    respawn = time.monotonic() - t0
    assert restarted, demo.output()
    assert _until(lambda: _moving(demo), 15), "meters did not move again after the engine restart"
    back = time.monotonic() - t0
    assert _alive(control_pid)  # the control process (and the web UI) never went away
    new_engine = int(restarted.group(1))

    os.killpg(demo.proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    assert demo.proc.wait(15) == 0, demo.output()
    assert not _alive(new_engine) and not _alive(control_pid)
    with capsys.disabled():
        print(f"\n    demo: meters moving {time_to_meters:.1f} s after start; engine kill -9 -> respawned "
              f"{respawn:.2f} s, meters moving again {back:.1f} s")


def test_demo_plays_a_44k1_mix_and_refuses_a_file_it_cannot_play(masterbox_cmd, tmp_path, warm_kernels):
    """``masterbox demo --input`` with a 44.1 kHz file (the usual mix rate; the box runs at 48 kHz):
    the engine plays it, converted, without restarting, and the meters hear it at its level (a
    -20 dBFS 1 kHz sine in both channels: -20.0 LUFS by BS.1770, on the input meter). A file that is
    not audio is refused at once, before anything starts, instead of a demo "running" on an engine
    that fails at every restart."""
    import numpy as np
    import soundfile as sf

    mix = tmp_path / "mix44k1.flac"
    t = np.arange(44100 * 5) / 44100
    sf.write(str(mix), np.stack([0.1 * np.sin(2 * np.pi * 1000 * t)] * 2, axis=1), 44100, subtype="PCM_24")
    d = Demo(masterbox_cmd, tmp_path, _free_port(), "--input", str(mix))
    try:
        password = _until(lambda: d.find(r"log in with the password: (\S+)"), 30)
        assert password, d.output()
        d.login(password.group(1))
        meters = _until(lambda: _moving(d), 15)
        assert meters, d.output()
        reading = _until(lambda: (m := d.meters()) and m.get("in_short_term_lufs") is not None
                         and abs(m["in_short_term_lufs"] + 20.0) < 0.2 and m, 15)
        assert reading, (d.meters(), d.output())
        assert reading.get("rate") == 48000
        assert not d.find(r"engine exited|engine restarted"), d.output()
    finally:
        d.stop()

    junk = tmp_path / "notes.wav"
    junk.write_text("not audio")
    r = subprocess.run([*masterbox_cmd, "demo", "--port", str(_free_port()), "--input", str(junk)],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and "cannot read it as audio" in r.stderr, (r.returncode, r.stderr)
    assert "engine" not in r.stdout + r.stderr.replace(str(junk), "")
