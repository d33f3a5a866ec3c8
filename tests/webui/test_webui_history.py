"""The loudness history (webui.history) and its API: what the Live page's graph is drawn from."""

from __future__ import annotations

import math
import time

import pytest

from webui.history import LoudnessHistory


class Frames:
    """Meter frames handed out one per read, as the engine's shared memory would."""

    def __init__(self, frames):
        self.frames = list(frames)

    def __call__(self):
        f = self.frames.pop(0)
        if isinstance(f, Exception):
            raise f
        return f


def frame(i, o):
    return {"in_short_term_lufs": i, "out_short_term_lufs": o, "out_momentary_lufs": -3.0}


def test_points_gaps_and_silence():
    clock = iter([100.0, 100.5, 101.0, 101.5, 102.0]).__next__
    h = LoudnessHistory(Frames([frame(-20.04, -14.126), None, frame(-math.inf, -13.0),
                                RuntimeError("reader broke"), frame(-19.0, float("nan"))]), clock=clock)
    for _ in range(5):
        h.sample()
    s = h.snapshot()
    assert s["out_short_term_lufs"] == [-14.13, None, -13.0, None, None]
    assert s["in_short_term_lufs"] == [-20.04, None, None, None, -19.0]
    assert (s["period"], s["end"], s["seconds"]) == (0.5, 102.0, 2.5)


def test_keeps_the_last_minutes_only_and_clears():
    h = LoudnessHistory(Frames([frame(-20.0, -float(k)) for k in range(10)]), period=0.5, seconds=2.0)
    for _ in range(10):
        h.sample()
    assert h.snapshot()["out_short_term_lufs"] == [-6.0, -7.0, -8.0, -9.0]    # 2 s = 4 points, newest last
    h.gap(2)
    assert h.snapshot()["out_short_term_lufs"] == [-8.0, -9.0, None, None]
    h.clear()
    assert h.snapshot() == {"period": 0.5, "end": None, "seconds": 0.0, "in_short_term_lufs": [],
                            "out_short_term_lufs": []}


def test_the_thread_records_on_its_own_and_stops():
    n = 0

    def read():
        nonlocal n
        n += 1
        return frame(-20.0, -14.0)

    h = LoudnessHistory(read, period=0.01).start()
    deadline = time.monotonic() + 5
    while len(h.snapshot()["out_short_term_lufs"]) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    h.stop()
    got = len(h.snapshot()["out_short_term_lufs"])
    assert got >= 5
    time.sleep(0.05)
    assert len(h.snapshot()["out_short_term_lufs"]) == got       # stopped: nothing more


def test_api_returns_the_history_and_reset_clears_it(api, app):
    hist = app.extensions["masterbox"].history
    for _ in range(3):
        hist.sample()                   # the test app's history takes points when told (no thread)
    body = api.get("/api/v1/meters/history").get_json()
    assert body["period"] == 0.5 and body["seconds"] == pytest.approx(1.5)
    # the stub engine's meters read -20.5 LUFS short-term in and -14.1 out
    assert body["in_short_term_lufs"] == [-20.5] * 3 and body["out_short_term_lufs"] == [-14.1] * 3
    assert api.req("POST", "/api/v1/meters/reset", json={}).status_code == 200
    assert api.get("/api/v1/meters/history").get_json()["out_short_term_lufs"] == []
