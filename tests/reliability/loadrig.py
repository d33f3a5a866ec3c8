"""The whole box under load on the JACK-paced ALSA rig (issue 9, "Load").

Used by ``test_rel_load.py`` (short) and ``bench/reliability_load.py`` (any length). Pieces:

* :func:`start_engine`: ``masterbox engine --backend alsa`` on the rig's ``type file`` PCMs over a
  ``type jack`` PCM (JACK dummy at 48 kHz / 128 frames, so every period is paced by JACK's clock);
* :class:`ControlProcess`: ``python -m firmware.control_main --sim-panel`` (state, presets, the
  simulated front panel, the web UI under waitress), as the box runs it;
* :class:`Load`: from this process: API clients (keep-alive, each its own login) making >= 200
  requests/s of mixed reads and writes, a writer changing parameters 20 times/s (``PATCH /state``:
  web -> Control -> control socket -> engine), the virtual panel's knobs turned continuously
  (``POST /panel/knobs/K/turn`` -> SimulatedPanel -> panel controller -> Control), 10 SSE meter
  streams, and a capture running the whole time.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "load test password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def engine_argv(seconds: float, stats: Path) -> list[str]:
    exe = Path(sys.executable).with_name("masterbox")
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "firmware.cli"]
    return [*base, "engine", "--backend", "alsa", "--capture-device", "mbin", "--playback-device", "mbout",
            "--rate", "48000", "--period", "128", "--periods", "2", "--format", "S32_LE", "--preset", "streaming",
            "--wait-ready", "--duration", str(seconds), "--stats-json", str(stats)]


def start_engine(seconds: float, stats: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(engine_argv(seconds, stats), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def wait_running(timeout: float = 60.0) -> dict:
    from firmware.meters_shm import MeterReader

    reader = MeterReader()
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        m = reader.read()
        if m and m.get("state") == "running":
            return m
        time.sleep(0.05)
    raise AssertionError("the engine did not start running")


def kill_group(proc: subprocess.Popen | None, sig=signal.SIGTERM, timeout: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


class ControlProcess:
    def __init__(self, env: dict, port: int | None = None):
        from firmware.passwords import PasswordFile

        PasswordFile().set(PASSWORD)
        self.port = port or free_port()
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "firmware.control_main", "--sim-panel", "--host",
                                      "127.0.0.1", "--port", str(self.port)], env=env, cwd=str(REPO),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        end = time.monotonic() + 30
        while not any("web UI on" in ln for ln in self.lines):
            if self.proc.poll() is not None or time.monotonic() > end:
                raise AssertionError("control process did not start:\n" + "\n".join(self.lines[-30:]))
            time.sleep(0.05)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self):
        kill_group(self.proc)


class Client:
    """A keep-alive HTTP client with its own login and CSRF token."""

    def __init__(self, port: int, timeout: float = 10.0):
        self.port = port
        self.timeout = timeout
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.cookie = ""
        self.csrf = ""
        r, body = self.request("GET", "/api/v1/auth/session")
        self.csrf = json.loads(body)["csrf_token"]
        r, body = self.request("POST", "/api/v1/auth/login", {"password": PASSWORD})
        assert r.status == 200, body
        self.csrf = json.loads(body)["csrf_token"]

    def request(self, method: str, path: str, body=None):
        headers = {"Cookie": self.cookie} if self.cookie else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if method not in ("GET", "HEAD") and self.csrf:
            headers["X-CSRF-Token"] = self.csrf
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                payload = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                if attempt:
                    raise
        for k, v in r.getheaders():
            if k.lower() == "set-cookie" and v.startswith("masterbox_session="):
                self.cookie = v.split(";", 1)[0]
        return r, payload


class Load:
    """Everything the issue lists, at once, until :meth:`stop`; counts what happened."""

    def __init__(self, port: int, api_clients: int = 6, api_rate: float = 230.0, sse_clients: int = 10,
                 param_hz: float = 20.0, knob_hz: float = 10.0):
        self.port = port
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.status = Counter()
        self.kinds = Counter()
        self.latency: list[float] = []
        self.errors: list[str] = []
        self.sse_frames = [0] * sse_clients
        self.sse_status: list[int | None] = [None] * sse_clients
        self.param_sets = 0
        self.knob_turns = 0
        self.threads: list[threading.Thread] = []
        self.api_clients, self.api_rate = api_clients, api_rate
        self.sse_clients, self.param_hz, self.knob_hz = sse_clients, param_hz, knob_hz
        self.t0 = self.t1 = 0.0
        boot = Client(port)
        panel = json.loads(boot.request("GET", "/api/v1/panel")[1])
        self.knobs = [k["name"] if isinstance(k, dict) else k for k in panel.get("knobs", [])]
        assert self.knobs, panel

    def _count(self, kind: str, r, dt: float, body: bytes):
        with self.lock:
            self.status[r.status] += 1
            self.kinds[kind] += 1
            self.latency.append(dt)
            if r.status >= 500 and len(self.errors) < 20:
                self.errors.append(f"{kind} {r.status} {body[:200]!r}")

    def _paced(self, hz: float, fn):
        period = 1.0 / hz
        nxt = time.monotonic()
        while not self.stop_ev.is_set():
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - counted, the load goes on
                with self.lock:
                    self.status["exception"] += 1
                    if len(self.errors) < 20:
                        self.errors.append(f"{type(e).__name__}: {e}")
            nxt += period
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1.0:
                nxt = time.monotonic()

    def _api_worker(self, c: Client, rate: float, seed: int):
        rng = random.Random(seed)
        reads = ["/api/v1/state", "/api/v1/meters", "/api/v1/presets", "/api/v1/system", "/api/v1/captures",
                 "/api/v1/panel", "/api/v1/schema"]

        def one():
            u = rng.random()
            t = time.perf_counter()
            if u < 0.7:
                path = rng.choice(reads)
                r, body = c.request("GET", path)
                kind = "GET " + path.rsplit("/", 1)[1]
            elif u < 0.85:
                r, body = c.request("PATCH", "/api/v1/state",
                                    {"values": {"st.width": round(rng.uniform(80, 120), 2),
                                                "eq3.gain_db": round(rng.uniform(-3, 3), 2)}})
                kind = "PATCH state"
            elif u < 0.95:
                r, body = c.request("POST", "/api/v1/bypass", {"on": rng.random() < 0.5})
                kind = "POST bypass"
            else:
                r, body = c.request("POST", "/api/v1/meters/reset", {})
                kind = "POST meters/reset"
            self._count(kind, r, time.perf_counter() - t, body)

        self._paced(rate, one)

    def _param_writer(self, c: Client):
        rng = random.Random(99)

        def one():
            t = time.perf_counter()
            r, body = c.request("PATCH", "/api/v1/state", {"values": {
                "in.trim_db": round(rng.uniform(-3, 3), 2), "out.drive_db": round(rng.uniform(0, 6), 2),
                "eq2.gain_db": round(rng.uniform(-4, 4), 2), "mb.mid.threshold_db": round(rng.uniform(-30, -10), 1)}})
            self._count("PATCH state (20/s)", r, time.perf_counter() - t, body)
            if r.status == 200:
                self.param_sets += 1

        self._paced(self.param_hz, one)

    def _knob_turner(self, c: Client):
        state = {"i": 0, "dir": 1}

        def one():
            knob = self.knobs[state["i"] % len(self.knobs)]
            state["i"] += 1
            if state["i"] % 40 == 0:
                state["dir"] *= -1
            t = time.perf_counter()
            r, body = c.request("POST", f"/api/v1/panel/knobs/{knob}/turn", {"detents": 3 * state["dir"]})
            self._count("POST panel turn", r, time.perf_counter() - t, body)
            if r.status == 200:
                self.knob_turns += 1

        self._paced(self.knob_hz, one)

    def _sse(self, k: int, c: Client):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        conn.request("GET", "/api/v1/events", headers={"Cookie": c.cookie, "Accept": "text/event-stream"})
        r = conn.getresponse()
        self.sse_status[k] = r.status
        if r.status != 200:
            return
        while not self.stop_ev.is_set():
            try:
                line = r.fp.readline()
            except OSError:
                break
            if not line:  # the stream ended (sse_max_seconds): reconnect, as a browser does
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/api/v1/events", headers={"Cookie": c.cookie})
                r = conn.getresponse()
                continue
            if line.startswith(b"event: meters"):
                self.sse_frames[k] += 1
        conn.close()

    def start(self, capture: bool = True) -> None:
        self.capture_client = Client(self.port)
        if capture:
            r, body = self.capture_client.request("POST", "/api/v1/capture/start", {"tap": "both"})
            assert r.status in (200, 201), body
        # every client logs in first (a login hashes a password: not part of the load's rate)
        for k in range(self.sse_clients):
            self.threads.append(threading.Thread(target=self._sse, args=(k, Client(self.port)), daemon=True))
        for k in range(self.api_clients):
            self.threads.append(threading.Thread(target=self._api_worker, daemon=True,
                                                 args=(Client(self.port), self.api_rate / self.api_clients, k)))
        self.threads.append(threading.Thread(target=self._param_writer, args=(Client(self.port),), daemon=True))
        self.threads.append(threading.Thread(target=self._knob_turner, args=(Client(self.port),), daemon=True))
        for t in self.threads:
            t.start()
        self.t0 = time.monotonic()

    def stop(self, capture: bool = True) -> dict:
        self.stop_ev.set()
        self.t1 = time.monotonic()
        for t in self.threads:
            t.join(10)
        cap = None
        if capture:
            r, body = self.capture_client.request("POST", "/api/v1/capture/stop", {})
            cap = json.loads(body) if body else None
        return cap

    def figures(self) -> dict:
        wall = (self.t1 or time.monotonic()) - self.t0
        lat = sorted(self.latency)

        def pct(q):
            return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1) if lat else None

        n = sum(v for k, v in self.status.items() if isinstance(k, int))
        return {"seconds": round(wall, 1), "requests": n, "requests_per_s": round(n / wall, 1) if wall else 0,
                "status": {str(k): v for k, v in sorted(self.status.items(), key=str)},
                "kinds": dict(self.kinds), "latency_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
                "param_sets_per_s": round(self.param_sets / wall, 1) if wall else 0,
                "knob_turns_per_s": round(self.knob_turns / wall, 1) if wall else 0,
                "sse_status": self.sse_status,
                "sse_frames_per_s": [round(f / wall, 1) for f in self.sse_frames] if wall else [],
                "errors": self.errors}
