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
