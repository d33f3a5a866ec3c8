"""``GET /api/v1/meters/spectrum``: the Live page's analyser, served from the engine's audio ring."""

from __future__ import annotations

import math
import time

import numpy as np

from firmware.scope_shm import ScopeWriter
from firmware.spectrum import fft_size


def test_spectrum_is_null_without_an_engine_then_follows_its_audio(api):
    assert api.get("/api/v1/meters/spectrum").get_json() == {"spectrum": None}
    # an engine's ring at the default place (the test's own data root), holding a -12 dBFS 2 kHz sine
    # going in and the same at -18 dBFS coming out (written as the loop does; the engine itself is
    # tests/engine/test_spectrum_engine.py's)
    rate = 96000
    w = ScopeWriter(rate)
    try:
        n = fft_size(rate) + 1000
        s = np.sin(2 * np.pi * 2000 * np.arange(n) / rate)
        w.ring[:n] = np.stack([s, s, s, s], axis=1) * [0.25, 0.25, 0.125, 0.125]
        w.head[0] = n
        body = api.get("/api/v1/meters/spectrum").get_json()["spectrum"]
        assert body["rate"] == rate and body["fft_size"] == 65536
        k = int(np.argmin(np.abs(np.log(np.array(body["bands_hz"]) / 2000))))
        assert abs(body["in_mid_db"][k] - 20 * math.log10(0.25)) < 0.1
        assert abs(body["out_mid_db"][k] - 20 * math.log10(0.125)) < 0.1
        assert body["out_side_db"][k] == -120.0
    finally:
        w.close()
    time.sleep(0.15)                  # an analysis is served for up to 0.1 s
    assert api.get("/api/v1/meters/spectrum").get_json() == {"spectrum": None}


def test_vectorscope_is_null_without_an_engine_then_shows_its_output(api):
    assert api.get("/api/v1/meters/vectorscope").get_json() == {"vectorscope": None}
    rate = 48000
    w = ScopeWriter(rate)
    try:
        n = 4800
        s = np.sin(2 * np.pi * 440 * np.arange(n) / rate) * 0.5
        w.ring[:n] = np.stack([s, s, s, np.zeros(n)], axis=1)     # output: the left channel alone
        w.head[0] = n
        v = api.get("/api/v1/meters/vectorscope").get_json()["vectorscope"]
        pts = np.array(v["points"])
        assert v["rate"] == rate and len(pts) > 100
        assert np.allclose(pts[:, 1], -pts[:, 0], atol=1e-3)      # one line, leaning left
        assert v["correlation"] is None and v["side_to_mid_db"] == 0.0
    finally:
        w.close()
