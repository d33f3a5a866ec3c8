"""Helpers for the web UI tests: the real Control (state, presets, captures) around a stand-in engine.

The API tests need an engine that answers instantly and meters that move, without a sound
card or numba: :class:`StubEngine` and :class:`StubMeters` stand in for the engine process
(its control socket and shared meters) in these tests only. The browser tests in
``test_browser.py`` run against a real ``masterbox engine --backend sim`` where it exists.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from dsp import schema
from firmware import streaming
from tests.waiting import wait_for

PASSWORD = "correct horse battery"


class StubEngine:
    """Answers like the engine's control channel; a capture writes a real WAV into the folder."""

    def __init__(self, captures_dir: Path):
        self.captures_dir = captures_dir
        self.calls: list[tuple] = []
        self.capturing: str | None = None
        self.bypassed = False
        self.monitor_mode = "stereo"
        self.preview_service = "off"
        self.out_integrated = -14.0     # the stub meters' output loudness (a test may make the master loud)
        self.running = True
        self.params: dict = {}
        self.realistic = False
        self.preset = ""
        self.ref_info: dict | None = None    # the loaded reference's facts (None: none loaded)
        self.ref_on = False
        self.ref_match: dict = {}            # its gain and how it was chosen
        self.master_lufs: float | None = -14.0   # the output's integrated loudness a level match is taken from

    def _check(self):
        if not self.running:
            from firmware.control import EngineUnavailableFallback

            raise EngineUnavailableFallback("no engine socket")

    def status(self):
        self._check()
        return {"ok": True, "start_id": "stub", "backend": "sim", "rate": 48000, "period": 128,
                "state": "running", "device": {"backend": "sim", "rate": 48000, "period": 128, "periods": 2},
                "reference": self.reference_status()}

    def set_params(self, values):
        self._check()
        self.params.update(values)
        self.calls.append(("set_params", dict(values)))
        return {"ok": True}

    def bypass(self, on, level_match=None):
        self._check()
        self.bypassed = on
        self.calls.append(("bypass", on, level_match))
        return {"ok": True}

    def compare(self, on):
        self._check()
        self.calls.append(("compare", on))
        return {"ok": True, "compare": on}

    def monitor(self, mode):
        """As the control channel's: refuses a mode it does not know."""
        self._check()
        try:
            schema.monitor_mode_index(mode)
        except ValueError as e:
            return {"ok": False, "error": str(e)}
        self.monitor_mode = mode
        self.calls.append(("monitor", mode))
        return {"ok": True, "monitor": mode}

    def preview(self, service):
        """As the control channel's: refuses a service it does not know."""
        self._check()
        try:
            streaming.preview_index(service)
        except ValueError as e:
            return {"ok": False, "error": str(e)}
        self.preview_service = service
        self.calls.append(("preview", service))
        return {"ok": True, "preview": service}

    def meters_reset(self):
        self._check()
        self.calls.append(("meters_reset",))
        return {"ok": True}

    def capture_start(self, tap="output", fmt="PCM_24", max_seconds=None, preset="", modified=False):
        self._check()
        if self.capturing:
            return {"ok": False, "error": "a capture is already running"}
        name = f"2026-11-22_2200_{preset or 'none'}_{len(self.calls)}"
        self.capturing = name
        self.preset = preset
        self.calls.append(("capture_start", tap, fmt, max_seconds, preset))
        return {"ok": True, "name": name}

    def capture_stop(self):
        self._check()
        if not self.capturing:
            return {"ok": False, "error": "no capture is running"}
        wav = self.captures_dir / f"{self.capturing}.wav"
        if self.realistic:  # music-like programme plus the analysis sidecar, as the engine's writer leaves them
            from dsp.programme import render_programme
            from firmware.captures import write_sidecar

            sf.write(wav, render_programme(12.0, 48000, peak_dbfs=-1.0), 48000, subtype="PCM_24")
            write_sidecar(wav, {"preset": self.preset, "tap": "output", "stop_reason": "stopped", "dropped_frames": 0})
        else:
            write_wav(wav, seconds=2.0)
        self.calls.append(("capture_stop", self.capturing))
        self.capturing = None
        return {"ok": True}

    # -- the reference track: refuses and answers as firmware/control_channel.py does -----------
    def reference_status(self) -> dict | None:
        """As the engine's: the prepared file's facts, on/heard (no audio here: heard while on), the match."""
        if self.ref_info is None:
            return None
        return {**self.ref_info, "on": self.ref_on, "heard": self.ref_on, "position_s": 0.0, **self.ref_match}

    def reference_load(self, path):
        """Map a prepared reference (its header read as the engine reads it); it starts off."""
        from firmware.reference import ReferenceError, read_info

        self._check()
        try:
            info = read_info(Path(path))
        except ReferenceError as e:
            return {"ok": False, "error": str(e)}
        if info["rate"] != 48000:
            return {"ok": False,
                    "error": f"the reference was prepared at {info['rate']} Hz; the engine runs at 48000 Hz"}
        self.ref_info, self.ref_on, self.ref_match = info, False, {}
        self.calls.append(("reference_load", str(path)))
        return self.reference_status()

    def reference(self, on, gain_db=None):
        """On: at ``gain_db``, else matched to ``master_lufs`` and held under the ceiling (the engine's rule)."""
        from firmware.reference import match_gain_db

        self._check()
        if self.ref_info is None:
            return {"ok": False, "error": "no reference track is loaded"}
        match: dict = {"matched_to": "given"}
        if on and gain_db is None:
            match = {"matched_to": None}
            if self.master_lufs is not None:
                match = {"matched_to": "integrated", "master_lufs": self.master_lufs}
            ceiling = self.params.get("lim.ceiling_dbtp", schema.BY_ID["lim.ceiling_dbtp"].default)
            info = self.ref_info
            gain_db, match["short_by_db"] = match_gain_db(match.get("master_lufs"), info.get("integrated_lufs"),
                                                          info.get("true_peak_dbtp"), float(ceiling))
        if on:
            self.ref_match = {"gain_db": round(float(gain_db or 0.0), 2), **match}
        self.ref_on = bool(on)
        self.calls.append(("reference", bool(on), gain_db))
        return self.reference_status()

    def reference_clear(self):
        self._check()
        self.ref_info, self.ref_on, self.ref_match = None, False, {}
        self.calls.append(("reference_clear",))
        return {"ok": True, "reference": None}


class StubMeters:
    """A meter frame that changes on every read, like the engine's shared memory at 20 Hz."""

    def __init__(self, engine: StubEngine):
        self.engine = engine
        self.seq = 0
        self.rate = None        # the engine's sample rate, when a test says it runs at one

    def read(self):
        if not self.engine.running:
            return None
        self.seq += 1
        t = time.monotonic()
        wob = 3 * math.sin(t * 2.0)
        return {
            "seq": self.seq, "time": time.time(), "state": "running", "bypass": self.engine.bypassed,
            "load": 0.21, "xruns": 0,
            "in_peak_dbfs": -8 + wob, "in_true_peak_dbtp": -7.6 + wob, "in_momentary_lufs": -20 + wob,
            "in_short_term_lufs": -20.5, "in_integrated_lufs": -21.0, "in_loudness_range_lu": 6.2,
            "out_peak_dbfs": -1.2 + wob / 3, "out_true_peak_dbtp": -1.05, "out_momentary_lufs": -13 + wob,
            "out_short_term_lufs": -14.1, "out_integrated_lufs": self.engine.out_integrated,
            "out_loudness_range_lu": 5.1,
            "gr_low_db": 2.0, "gr_mid_db": 1.2, "gr_high_db": 0.6, "gr_limiter_db": 1.8 + wob / 3,
            "correlation": 0.82, "capturing": self.engine.capturing is not None, "capture_dropped": 0,
            "reference": self.engine.ref_on, "monitor": self.engine.monitor_mode,
            "preview": self.engine.preview_service, "preview_gain_db": self._preview_gain(),
        } | ({"rate": self.rate} if self.rate else {})

    def _preview_gain(self) -> float:
        """What the engine's publisher computes (firmware.streaming), from this stub's output loudness."""
        e = self.engine
        if e.preview_service == "off":
            return 0.0
        return streaming.normalisation_gain(e.preview_service, e.out_integrated, -1.05)[0] or 0.0


def as_page_shows(v: float, digits: int = 1) -> str:
    """``v`` as the pages' ``Number.toFixed(digits)`` writes it. Python's format rounds a tie of the exact
    binary value to even (``f"{1.25:.1f}"`` is 1.2), JavaScript away from zero (1.3): a gain of -1.25 dB
    must be looked for as the page shows it."""
    from decimal import ROUND_HALF_UP, Decimal

    return str(Decimal(v).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def write_wav(path: Path, seconds: float = 2.0, rate: int = 48000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    x = 0.25 * np.sin(2 * np.pi * 440 * t)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.stack([x, x], axis=1), rate, subtype="PCM_24")
    return path


def preset_doc(name: str, **over) -> dict:
    params = schema.defaults()
    params.update(over)
    return {"format": "masterbox-preset", "schema_version": 1, "name": name, "description": f"{name} test",
            "params": params}


def set_password(app, password=PASSWORD):
    app.extensions["masterbox"].passwords.set(password)


class Api:
    """A test client that logs in and sends the session's CSRF token."""

    def __init__(self, client):
        self.c = client
        self.csrf = None

    def token(self):
        self.csrf = self.c.get("/api/v1/auth/session").get_json()["csrf_token"]
        return self.csrf

    def login(self, password=PASSWORD):
        self.token()
        r = self.c.post("/api/v1/auth/login", json={"password": password}, headers={"X-CSRF-Token": self.csrf})
        if r.status_code == 200:
            self.csrf = r.get_json()["csrf_token"]
        return r

    def req(self, method, path, json=None, data=None, headers=None, csrf=True, **kw):
        h = dict(headers or {})
        if csrf and method not in ("GET", "HEAD"):
            h.setdefault("X-CSRF-Token", self.csrf or self.token())
        return self.c.open(path, method=method, json=json, data=data, headers=h, **kw)

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.req("POST", path, json=json, **kw)





def wait_until(cond, timeout: float = 30.0, step: float = 0.05):
    """Poll ``cond()`` until it returns something true (and return that), or fail after ``timeout`` s."""
    return wait_for(cond, timeout, step)
