"""The JSON API through Flask's test client: what works, and every kind of bad input.

The promise under test: a malformed request gets a 4xx whose message says what is wrong,
never a 500 and never a partial change.
"""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import zipfile

import numpy as np
import pytest
from mbweb_helpers import preset_doc, write_wav


def error_of(r):
    body = r.get_json()
    assert body and isinstance(body.get("error"), str) and body["error"], r.get_data(as_text=True)
    return body["error"]


# -- state ----------------------------------------------------------------------------------
def test_schema_and_state(api):
    s = api.get("/api/v1/schema").get_json()
    assert "eq" in s["groups"] and any(p["id"] == "in.trim_db" for p in s["params"])
    st = api.get("/api/v1/state").get_json()
    assert st["values"]["in.trim_db"] == 0.0 and st["bypass"] is False


def test_patch_state_applies_and_reaches_engine(api, control):
    r = api.req("PATCH", "/api/v1/state", json={"values": {"in.trim_db": 3.5, "eq1.type": "bell", "mb.on": True}})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["changed"] == {"in.trim_db": 3.5, "eq1.type": "bell", "mb.on": True}
    assert body["modified"] is True
    assert control.state.get("in.trim_db") == 3.5
    assert control.engine.params["in.trim_db"] == 3.5


def _bilinear_db(b, a, f0, rate, freqs):
    """scipy's response of the analog prototype ``b/a`` (w0 = 1), prewarped to ``f0``: an independent oracle."""
    from scipy import signal

    w0 = 2 * rate * np.tan(np.pi * f0 / rate)
    scale = np.array([w0 ** 2, w0, 1.0])
    bz, az = signal.bilinear(np.array(b, float) / scale, np.array(a, float) / scale, fs=rate)
    return 20 * np.log10(np.abs(signal.freqz(bz, az, worN=freqs, fs=rate)[1]))


def test_eq_response_follows_the_state(api):
    """The Chain page's curve: the bands that are on, on mid and side, as scipy designs them."""
    off = {f"eq{n}.on": False for n in range(1, 7)}
    r = api.req("PATCH", "/api/v1/state", json={"values": off | {
        "eq3.on": True, "eq3.type": "bell", "eq3.freq": 1000.0, "eq3.gain_db": 6.0, "eq3.q": 1.0,
        "eq3.place": "stereo",
        "eq6.on": True, "eq6.type": "high_shelf", "eq6.freq": 8000.0, "eq6.gain_db": 4.0, "eq6.q": 0.707,
        "eq6.place": "side"}})
    assert r.status_code == 200, r.get_json()
    body = api.get("/api/v1/eq/response").get_json()
    rate, freqs = body["rate"], np.array(body["freqs"])
    assert rate == 48000 and freqs[0] == 20.0 and freqs[-1] == 20000.0 and len(freqs) == 241
    assert np.all(np.diff(np.log(freqs)) > 0)
    A = 10 ** (6.0 / 40)
    bell = _bilinear_db([1, A / 1.0, 1], [1, 1 / (A * 1.0), 1], 1000.0, rate, freqs)
    A = 10 ** (4.0 / 40)
    shelf = _bilinear_db([A * A, A * np.sqrt(A) / 0.707, A], [1, np.sqrt(A) / 0.707, A], 8000.0, rate, freqs)
    assert np.max(np.abs(np.array(body["mid_db"]) - bell)) < 2e-3
    assert np.max(np.abs(np.array(body["side_db"]) - (bell + shelf))) < 2e-3
    assert body["same"] is False
    api.req("PATCH", "/api/v1/state", json={"values": {"eq6.on": False}})
    body = api.get("/api/v1/eq/response").get_json()
    assert body["same"] is True and np.max(np.abs(np.array(body["side_db"]) - bell)) < 2e-3
    api.req("PATCH", "/api/v1/state", json={"values": {"eq3.on": False}})
    assert set(api.get("/api/v1/eq/response").get_json()["mid_db"]) == {0.0}      # all off: flat


def test_eq_response_is_drawn_at_the_rate_the_engine_runs(api, control):
    """The engine's rate (from its meters) beats the configured one: a band near Nyquist differs."""
    api.req("PATCH", "/api/v1/state", json={"values": {
        "eq6.on": True, "eq6.type": "high_cut", "eq6.freq": 15000.0, "eq6.q": 0.707, "eq6.place": "stereo"}})
    at48 = api.get("/api/v1/eq/response").get_json()
    control.meters.rate = 44100
    at44 = api.get("/api/v1/eq/response").get_json()
    assert (at48["rate"], at44["rate"]) == (48000, 44100)
    want = _bilinear_db([0, 0, 1], [1, 1 / 0.707, 1], 15000.0, 44100, np.array(at44["freqs"]))
    assert np.max(np.abs(np.array(at44["mid_db"]) - want)) < 2e-3
    assert at44["mid_db"][-1] < at48["mid_db"][-1] - 1.0      # 20 kHz: closer to Nyquist at 44.1 kHz


def test_multiband_response_follows_the_state(api, control):
    """The Chain page's multiband picture: the bands' split as scipy designs the Linkwitz-Riley filters
    (two Butterworth sections each), and each band's static curve as the textbook formula gives it."""
    from scipy import signal

    from dsp.compressor import static_curve_formula

    r = api.req("PATCH", "/api/v1/state", json={"values": {
        "mb.on": True, "mb.xover_low": 150.0, "mb.xover_high": 4000.0, "mb.mix": 100.0,
        "mb.mid.threshold_db": -24.0, "mb.mid.ratio": 3.0, "mb.mid.knee_db": 4.0, "mb.mid.makeup_db": 1.5,
        "mb.high.bypass": True}})
    assert r.status_code == 200, r.get_json()
    control.meters.rate = 44100
    body = api.get("/api/v1/multiband/response").get_json()
    rate, freqs = body["rate"], np.geomspace(20.0, 20000.0, 241)       # (the body's are rounded to 0.01 Hz)
    assert np.array(body["freqs"]) == pytest.approx(freqs, abs=0.006)
    assert rate == 44100 and body["on"] is True and body["splits"] == [150.0, 4000.0]

    def lr4(kind, fc):
        _, h = signal.sosfreqz(signal.butter(2, fc, kind, fs=rate, output="sos"), worN=freqs, fs=rate)
        return np.abs(h) ** 2
    want = {"low": lr4("lowpass", 150.0), "mid": lr4("highpass", 150.0) * lr4("lowpass", 4000.0),
            "high": lr4("highpass", 150.0) * lr4("highpass", 4000.0)}
    for band, mag in want.items():
        got = np.array(body["bands"][band]["split_db"])
        audible = mag > 1e-7              # (rounded to 0.001 dB; far down the slopes both are tiny numbers)
        assert np.max(np.abs(got[audible] - 20 * np.log10(mag[audible]))) < 2e-3, band
    levels = body["levels_db"]
    assert levels[0] == -60.0 and levels[-1] == 0.0 and len(levels) == 121
    mid = body["bands"]["mid"]
    assert mid["out_db"] == pytest.approx([static_curve_formula(x, -24.0, 3.0, 4.0) + 1.5 for x in levels], abs=1e-3)
    assert mid["gr_db"] == pytest.approx([x - static_curve_formula(x, -24.0, 3.0, 4.0) for x in levels], abs=1e-3)
    assert body["bands"]["high"]["out_db"] == pytest.approx(levels) and set(body["bands"]["high"]["gr_db"]) == {0.0}
    assert (mid["threshold_db"], mid["ratio"], body["bands"]["high"]["bypass"]) == (-24.0, 3.0, True)
    api.req("PATCH", "/api/v1/state", json={"values": {"mb.on": False}})
    off = api.get("/api/v1/multiband/response").get_json()
    assert off["on"] is False and off["bands"]["mid"]["out_db"] == pytest.approx(levels)   # off: nothing changes


@pytest.mark.parametrize("values, needle", [
    ({"in.trim_db": 99}, "out of range"),
    ({"in.trim_db": "loud"}, "must be a number"),
    ({"in.trim_db": True}, "must be a number"),
    ({"in.trim_db": None}, "must be a number"),
    ({"in.trim_db": float("nan")}, None),
    ({"no.such": 1}, "unknown parameter"),
    ({"eq1.type": "wobble"}, "must be one of"),
    ({"mb.on": "maybe"}, "on/off"),
    ({"in.trim_db": [1]}, "must be a number"),
])
def test_patch_state_refuses_bad_values_and_changes_nothing(api, control, values, needle):
    before = control.state.values
    body = json.dumps({"values": {**values, "in.trim_db": values.get("in.trim_db", 1.0), "st.width": 150.0}},
                      allow_nan=True) if "in.trim_db" not in values else json.dumps(
        {"values": {**values, "st.width": 150.0}}, allow_nan=True)
    r = api.req("PATCH", "/api/v1/state", data=body, headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.get_data(as_text=True)
    msg = error_of(r)
    if needle:
        assert needle in msg
    assert control.state.values == before, "a refused request must not change anything (st.width was valid)"


@pytest.mark.parametrize("body, ctype, status, needle", [
    ("{not json", "application/json", 400, "not valid JSON"),
    ("", "application/json", 400, "empty"),
    ("[1, 2]", "application/json", 400, "JSON object"),
    ('"text"', "application/json", 400, "JSON object"),
    ('{"values": {"in.trim_db": 1}}', "text/plain", 415, "Content-Type"),
    ('{"values": [1]}', "application/json", 400, "'values' must be an object"),
    ('{"values": {}}', "application/json", 400, "empty"),
    ('{"vals": {"in.trim_db": 1}}', "application/json", 400, "missing field 'values'"),
    ('{"values": {"in.trim_db": 1}, "x": 1}', "application/json", 400, "unknown field"),
    (b"\xff\xfe{}", "application/json", 400, "UTF-8"),
])
def test_malformed_bodies(api, control, body, ctype, status, needle):
    before = control.state.values
    r = api.req("PATCH", "/api/v1/state", data=body, headers={"Content-Type": ctype})
    assert r.status_code == status, r.get_data(as_text=True)
    assert needle in error_of(r)
    assert control.state.values == before


def test_oversized_body_is_413(api, control):
    huge = json.dumps({"values": {"in.trim_db": 1.0}, "pad": "x" * 200_000})
    r = api.req("PATCH", "/api/v1/state", data=huge, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "too large" in error_of(r)
    r = api.req("POST", "/api/v1/presets-import", data=b"x" * (9 * 1024 * 1024),
                headers={"Content-Type": "application/zip"})
    assert r.status_code == 413 and "too large" in error_of(r)
    assert control.state.get("in.trim_db") == 0.0


def test_unknown_routes_and_methods_are_json(api):
    r = api.get("/api/v1/nothing")
    assert r.status_code == 404 and error_of(r)
    r = api.req("PUT", "/api/v1/state", json={})
    assert r.status_code == 405 and "not allowed" in error_of(r)


def test_bypass_and_level_match(api, control):
    r = api.post("/api/v1/bypass", json={"on": True, "level_match": False})
    assert r.status_code == 200 and r.get_json()["bypass"] is True
    assert control.engine.bypassed is True and control.state.get("ab.level_match") is False
    for bad in ({"on": "yes"}, {"on": 1}, {}, {"on": True, "level_match": "no"}):
        r = api.post("/api/v1/bypass", json=bad)
        assert r.status_code == 400, bad
        error_of(r)


def test_bypass_with_engine_down_is_kept_for_later(api, control):
    control.engine.running = False
    r = api.post("/api/v1/bypass", json={"on": True})
    assert r.status_code == 200 and r.get_json()["engine"]["ok"] is False
    assert control.bypassed is True



# -- listening modes (POST /monitor) ----------------------------------------------------------
def test_monitor_every_mode_reaches_the_engine_and_the_state(api, control):
    from dsp.schema import MONITOR_MODES

    assert api.get("/api/v1/state").get_json()["monitor"] == "stereo"
    for mode in (*MONITOR_MODES[1:], "stereo"):
        control.engine.calls.clear()
        r = api.post("/api/v1/monitor", json={"mode": mode})
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        assert body["ok"] is True and body["monitor"] == mode, body
        assert body["engine"] == {"ok": True, "monitor": mode}
        assert control.engine.calls == [("monitor", mode)]
        assert control.monitor_mode == control.engine.monitor_mode == mode
        assert api.get("/api/v1/state").get_json()["monitor"] == mode


@pytest.mark.parametrize("body, says", [
    ({}, "missing field 'mode'"),
    ({"mode": None}, "missing field 'mode'"),
    ({"mode": "wide"}, "unknown listening mode 'wide'"),
    ({"mode": "Mono"}, "unknown listening mode 'Mono'"),
    ({"mode": " mono"}, "unknown listening mode ' mono'"),
    ({"mode": ""}, "unknown listening mode ''"),
    ({"mode": 1}, "must be a string"),
    ({"mode": True}, "got a boolean"),
    ({"mode": ["mono"]}, "must be a string"),
    ({"mode": {"mode": "mono"}}, "must be a string"),
    ({"mode": "mono", "level": 1}, "unknown field(s): level"),
])
def test_monitor_refuses_a_bad_body_naming_the_modes_and_sends_nothing(api, control, body, says):
    from dsp.schema import MONITOR_MODES

    assert api.post("/api/v1/monitor", json={"mode": "side"}).status_code == 200   # so "unchanged" shows
    control.engine.calls.clear()
    r = api.post("/api/v1/monitor", json=body)
    assert r.status_code == 400, (body, r.get_json())
    err = error_of(r)
    assert says in err, err
    if "unknown field" not in says:
        assert "one of stereo, mono, side, left, right" in err and all(m in err for m in MONITOR_MODES), err
    assert control.engine.calls == [] and control.monitor_mode == control.engine.monitor_mode == "side"


def test_monitor_refuses_what_is_not_a_json_object(api, control):
    control.engine.calls.clear()
    r = api.post("/api/v1/monitor", data="mode=mono", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and error_of(r)
    for raw in ('"mono"', '["mono"]', "", "{mode: mono}"):
        r = api.post("/api/v1/monitor", data=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and error_of(r), raw
    assert control.engine.calls == [] and control.monitor_mode == "stereo"


def test_monitor_with_engine_down_is_kept_and_pushed_when_it_returns(api, control):
    control.engine.running = False
    r = api.post("/api/v1/monitor", json={"mode": "mono"})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["ok"] is True and body["monitor"] == "mono"
    assert body["engine"]["ok"] is False and "engine unavailable" in body["engine"]["error"], body
    assert control.monitor_mode == "mono" and control.engine.monitor_mode == "stereo"
    assert api.get("/api/v1/state").get_json()["monitor"] == "mono"
    control.engine.running = True
    control.push_all()          # what Control's watcher does when the engine comes back
    assert control.engine.monitor_mode == "mono" and ("monitor", "mono") in control.engine.calls


# -- As streamed (POST /preview) ---------------------------------------------------------------
def test_preview_every_service_reaches_the_engine_and_the_state_and_bad_bodies_change_nothing(api, anon, control):
    from firmware.streaming import PREVIEWS

    assert api.get("/api/v1/state").get_json()["preview"] == "off"
    for service in (*PREVIEWS[1:], "off", "tidal"):
        control.engine.calls.clear()
        r = api.post("/api/v1/preview", json={"service": service})
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        assert body["ok"] is True and body["preview"] == service and body["engine"]["preview"] == service, body
        assert control.engine.calls == [("preview", service)]
        assert control.preview == control.engine.preview_service == service
    control.engine.calls.clear()
    for bad, says in (({}, "missing field 'service'"), ({"service": "Spotify"}, "unknown streaming preview"),
                      ({"service": 3}, "must be a string"), ({"service": True}, "got a boolean"),
                      ({"service": "off", "gain": 1}, "unknown field(s): gain")):
        r = api.post("/api/v1/preview", json=bad)
        assert r.status_code == 400 and says in error_of(r), (bad, r.get_json())
        if "unknown field" not in says:
            assert "one of off, spotify, youtube, apple_music, tidal, amazon_music" in error_of(r)
    assert control.engine.calls == [] and control.preview == control.engine.preview_service == "tidal"
    # the engine down: kept, and pushed when it returns
    control.engine.running = False
    r = api.post("/api/v1/preview", json={"service": "spotify"})
    assert r.status_code == 200 and r.get_json()["engine"]["ok"] is False
    assert control.preview == "spotify" and control.engine.preview_service == "tidal"
    control.engine.running = True
    control.push_all()
    assert control.engine.preview_service == "spotify"
    assert anon.post("/api/v1/preview", json={"service": "off"}).status_code == 401
    assert api.req("POST", "/api/v1/preview", json={"service": "off"}, csrf=False).status_code == 403
    assert control.preview == control.engine.preview_service == "spotify"


def test_monitor_needs_login_and_csrf(api, anon, control):
    r = anon.post("/api/v1/monitor", json={"mode": "mono"})
    assert r.status_code == 401, r.get_data(as_text=True)
    r = api.req("POST", "/api/v1/monitor", json={"mode": "mono"}, csrf=False)
    assert r.status_code == 403 and "CSRF" in error_of(r)
    r = api.post("/api/v1/monitor", json={"mode": "mono"}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-site" in error_of(r)
    assert api.get("/api/v1/monitor").status_code == 405        # GET never changes anything
    assert not [c for c in control.engine.calls if c[0] == "monitor"] and control.monitor_mode == "stereo"


def test_learn_start_stop(api, control):
    r = api.post("/api/v1/learn/start", json={"seconds": 5})
    assert r.status_code == 200 and r.get_json()["learn"]["state"] in ("listening", "adjusting")
    assert api.post("/api/v1/learn/stop", json={}).status_code == 200
    for bad in ({"seconds": 0}, {"seconds": "10"}, {"seconds": 1e9}):
        assert api.post("/api/v1/learn/start", json=bad).status_code == 400


def test_meters_snapshot_and_reset(api, control):
    m = api.get("/api/v1/meters").get_json()["meters"]
    assert m["out_integrated_lufs"] == -14.0
    assert api.post("/api/v1/meters/reset", json={}).status_code == 200
    control.engine.running = False
    assert api.get("/api/v1/meters").get_json()["meters"] is None
    r = api.post("/api/v1/meters/reset", json={})
    assert r.status_code == 503 and "not running" in error_of(r)


# -- presets ------------------------------------------------------------------------------
def test_presets_list_recall_save_as_rename_duplicate_delete(api, control):
    names = [p["name"] for p in api.get("/api/v1/presets").get_json()["presets"]]
    assert {"transparent", "streaming", "loud"} <= set(names)
    r = api.post("/api/v1/presets/loud/recall", json={})
    assert r.status_code == 200 and r.get_json()["active_preset"] == "loud"
    assert control.state.get("out.drive_db") == 6.0
    api.req("PATCH", "/api/v1/state", json={"values": {"st.width": 120.0}})
    r = api.post("/api/v1/presets", json={"name": "Mein Präset ♫", "description": "wide"})
    assert r.status_code == 201, r.get_json()
    assert control.state.active_preset == "Mein Präset ♫" and control.state.modified is False
    shown = api.get("/api/v1/presets/Mein Präset ♫").get_json()
    assert shown["params"]["st.width"] == 120.0 and shown["factory"] is False
    api.req("PATCH", "/api/v1/state", json={"values": {"st.width": 130.0}})
    assert api.req("PUT", "/api/v1/presets/Mein Präset ♫").status_code == 200
    assert api.get("/api/v1/presets/Mein Präset ♫").get_json()["params"]["st.width"] == 130.0
    r = api.post("/api/v1/presets/Mein Präset ♫/rename", json={"new_name": "Wide"})
    assert r.status_code == 200 and control.state.active_preset == "Wide"
    r = api.post("/api/v1/presets/Wide/duplicate", json={"new_name": "Wide 2"})
    assert r.status_code == 201
    assert api.req("DELETE", "/api/v1/presets/Wide 2").status_code == 200
    assert api.get("/api/v1/presets/Wide 2").status_code == 404


def test_preset_refusals(api, control):
    before = control.state.snapshot()
    cases = [
        ("POST", "/api/v1/presets/nope/recall", {}, 404, "no preset named"),
        ("GET", "/api/v1/presets/nope", None, 404, "no preset named"),
        ("DELETE", "/api/v1/presets/streaming", None, 409, "factory"),
        ("PUT", "/api/v1/presets/streaming", {}, 409, "factory"),
        ("POST", "/api/v1/presets/streaming/rename", {"new_name": "x"}, 409, "factory"),
        ("POST", "/api/v1/presets", {"name": "streaming"}, 409, "factory"),
        ("POST", "/api/v1/presets", {"name": ""}, 400, "empty"),
        ("POST", "/api/v1/presets", {"name": 5}, 400, "must be a string"),
        ("POST", "/api/v1/presets", {}, 400, "missing field 'name'"),
        ("POST", "/api/v1/presets", {"name": "x" * 200}, 400, "too long"),
        ("POST", "/api/v1/presets", {"name": "bad\x00name"}, 400, "control characters"),
        ("POST", "/api/v1/presets", {"name": "../../etc/passwd"}, 400, "path"),
        ("POST", "/api/v1/presets/../../etc/recall", {}, 400, "path"),
        ("GET", "/api/v1/presets/..%2F..%2Fetc%2Fpasswd", None, 400, "path"),
        ("GET", "/api/v1/presets/%2Fetc%2Fpasswd/export", None, 404, "not found"),
        ("POST", "/api/v1/presets/loud/rename", {"new_name": "x"}, 409, "factory"),
        ("POST", "/api/v1/presets/loud/duplicate", {"new_name": "streaming"}, 409, "factory"),
        ("POST", "/api/v1/presets/loud/duplicate", {"new_name": ".hidden"}, 400, "start with"),
        ("POST", "/api/v1/presets", {"name": "ok", "description": 3}, 400, "description"),
    ]
    for method, path, body, status, needle in cases:
        r = api.req(method, path, json=body)
        assert r.status_code == status, (method, path, r.get_data(as_text=True))
        assert needle in error_of(r), (path, error_of(r))
    after = control.state.snapshot()
    assert after["values"] == before["values"] and after["active_preset"] == before["active_preset"]
    assert {p["name"] for p in api.get("/api/v1/presets").get_json()["presets"]} == {"transparent", "streaming",
                                                                                   "loud"}


def test_preset_export_import_roundtrip(api, control):
    api.post("/api/v1/presets", json={"name": "Mine"})
    r = api.get("/api/v1/presets/Mine/export")
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    doc = json.loads(r.data)
    assert doc["name"] == "Mine" and doc["format"] == "masterbox-preset"
    r = api.get("/api/v1/presets-export")
    assert r.status_code == 200 and r.mimetype == "application/zip"
    zipped = r.data
    assert api.req("DELETE", "/api/v1/presets/Mine").status_code == 200
    r = api.req("POST", "/api/v1/presets-import", data=zipped, headers={"Content-Type": "application/zip"})
    assert r.status_code == 201 and r.get_json()["imported"] == ["Mine"]
    r = api.req("POST", "/api/v1/presets-import", data=zipped, headers={"Content-Type": "application/zip"})
    assert r.status_code == 409 and "already exists" in error_of(r)
    r = api.req("POST", "/api/v1/presets-import?overwrite=1", data=zipped,
                headers={"Content-Type": "application/zip"})
    assert r.status_code == 201
    r = api.post("/api/v1/presets-import", json=preset_doc("Imported one", **{"st.width": 90.0}))
    assert r.status_code == 201 and r.get_json()["imported"] == ["Imported one"]


def test_invalid_imports_change_nothing(api, control):
    def names():
        return {p["name"] for p in api.get("/api/v1/presets").get_json()["presets"]}

    before = names()
    bad_param = preset_doc("Bad")
    bad_param["params"]["in.trim_db"] = 500
    missing = preset_doc("Missing")
    del missing["params"]["eq1.freq"]
    traversal = preset_doc("../../evil")
    cases = [
        (bad_param, 422, "in.trim_db"),
        (missing, 422, "eq1.freq"),
        (traversal, 400, "path"),
        ({"format": "something-else", "name": "x", "params": {}}, 422, None),
        ([1, 2], 400, "JSON object"),
    ]
    for doc, status, needle in cases:
        r = api.post("/api/v1/presets-import", json=doc)
        assert r.status_code == status, (doc if not isinstance(doc, dict) else doc.get("name"), r.get_json())
        if needle:
            assert needle in error_of(r)
    # a zip with one good and one bad preset imports nothing
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("good.json", json.dumps(preset_doc("Good one")))
        z.writestr("bad.json", json.dumps(bad_param))
    r = api.req("POST", "/api/v1/presets-import", data=buf.getvalue(), headers={"Content-Type": "application/zip"})
    assert r.status_code in (400, 422) and "nothing was changed" in error_of(r)
    r = api.req("POST", "/api/v1/presets-import", data=b"PK not a zip", headers={"Content-Type": "application/zip"})
    assert r.status_code in (400, 422) and "zip" in error_of(r)
    r = api.req("POST", "/api/v1/presets-import?overwrite=maybe", json=preset_doc("x"))
    assert r.status_code == 400
    assert names() == before




def test_presets_version_moves_with_every_change_to_the_presets(api, control):
    """The state (and its SSE frames) carries presets_version, GET /presets the version it lists: a page
    that shows the presets lists them again when it moves (the Live page's quick recall was read once)."""
    def version():
        st, listed = api.get("/api/v1/state").get_json(), api.get("/api/v1/presets").get_json()
        assert st["presets_version"] == listed["version"]
        return st["presets_version"]

    seen = [version()]
    for method, path, body in (("POST", "/api/v1/presets", {"name": "Mine"}),
                               ("PUT", "/api/v1/presets/Mine", {}),
                               ("POST", "/api/v1/presets/Mine/rename", {"new_name": "Yours"}),
                               ("POST", "/api/v1/presets/Yours/duplicate", {"new_name": "Theirs"}),
                               ("POST", "/api/v1/presets-import", preset_doc("Imported")),
                               ("DELETE", "/api/v1/presets/Theirs", None)):
        r = api.req(method, path, json=body)
        assert r.status_code < 300, (path, r.get_json())
        seen.append(version())
        assert seen[-1] != seen[-2], (path, seen)
    api.post("/api/v1/presets/loud/recall", json={})            # a recall changes no preset
    assert version() == seen[-1]


def test_presets_version_moves_when_the_presets_command_changes_them(api, control, masterbox_cmd, tmp_path):
    """``masterbox presets import`` / ``delete`` run from a shell is another process with its own store;
    the running box's pages still list the presets again (the state's presets_version moves) and see
    the change. Nothing changed, the version stays."""
    def version():
        return api.get("/api/v1/state").get_json()["presets_version"]

    def listed():
        return {p["name"] for p in api.get("/api/v1/presets").get_json()["presets"]}

    def presets(*args):
        r = subprocess.run([*masterbox_cmd, "presets", *map(str, args)], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "MASTERBOX_HOME": str(control.presets.user_dir.parent)})
        assert r.returncode == 0, r.stderr

    src = tmp_path / "From shell.json"
    src.write_text(json.dumps(preset_doc("From shell")))
    v0 = version()
    assert version() == v0 and "From shell" not in listed()
    presets("import", src)
    v1 = version()
    assert v1 != v0 and "From shell" in listed()
    presets("delete", "From shell")
    assert version() != v1 and "From shell" not in listed()

# -- requests that used to answer 500 --------------------------------------------------------
BIG = "1" + "0" * 400      # a JSON integer no float can hold: float() raises OverflowError


@pytest.mark.parametrize("sign", ["", "-"])
def test_an_integer_too_large_for_a_float_is_refused_not_500(api, control, sign):
    big = sign + BIG
    before, presets = control.state.values, api.get("/api/v1/presets").get_json()["presets"]
    r = api.req("PATCH", "/api/v1/state", data='{"values": {"st.width": 150.0, "eq1.gain_db": ' + big + '}}',
                headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "eq1.gain_db: out of range" in error_of(r), r.get_data(as_text=True)
    assert control.state.values == before
    doc = json.dumps(preset_doc("bigint")).replace('"eq1.gain_db": ', '"eq1.gain_db": ' + big + ', "_": ')
    r = api.req("POST", "/api/v1/presets-import", data=doc, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "eq1.gain_db" in error_of(r), r.get_data(as_text=True)
    for path in ("/api/v1/captures/some%20take/master", "/api/v1/mastering/each"):
        body = ('{"captures": ["some take"], ' if "each" in path else "{") + '"target_lufs": ' + big + "}"
        r = api.req("POST", path, data=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "target.lufs: out of range" in error_of(r), (path, r.get_data(as_text=True))
    r = api.req("POST", "/api/v1/uploads", data='{"file": "mix.wav", "size": ' + big + "}",
                headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "size" in error_of(r), r.get_data(as_text=True)
    assert control.state.values == before and api.get("/api/v1/presets").get_json()["presets"] == presets
    assert control.mastering.status() is None


def test_json_nested_too_deeply_is_400_even_before_login(api, anon, control):
    deep = "[" * 30000 + "]" * 30000       # well inside the 64 KiB a JSON body may have
    before = control.state.values
    r = api.req("PATCH", "/api/v1/state", data='{"values": ' + deep + "}", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "nested too deeply" in error_of(r), r.get_data(as_text=True)
    r = anon.req("POST", "/api/v1/auth/login", data='{"password": ' + deep + "}",
                 headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "nested too deeply" in error_of(r), r.get_data(as_text=True)
    r = api.req("POST", "/api/v1/presets-import", data='{"name": "x", "params": ' + deep + "}",
                headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "nested too deeply" in error_of(r), r.get_data(as_text=True)
    assert control.state.values == before


def _damaged_zip(how: str) -> bytes:
    """A zip of a good preset and a second entry damaged ``how``: its CRC, its deflate data, a compression
    method zipfile does not know, or the encrypted flag."""
    import struct

    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        z.writestr("good.json", json.dumps(preset_doc("Good one")), compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("bad.json", json.dumps(preset_doc("Bad one")),
                   compress_type=zipfile.ZIP_STORED if how == "crc" else zipfile.ZIP_DEFLATED)
    raw = bytearray(b.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(raw))).getinfo("bad.json")
    local = info.header_offset
    data = local + 30 + len("bad.json") + struct.unpack("<H", raw[local + 28:local + 30])[0]
    central = raw.rfind(b"PK\x01\x02", 0, raw.rindex(b"bad.json"))
    if how == "crc":
        raw[data + 3] ^= 0x20                       # same length, another byte: the CRC no longer matches
    elif how == "deflate":
        raw[data:data + info.compress_size] = b"\xff" * info.compress_size     # an invalid block type
    elif how == "method":
        raw[local + 8:local + 10] = raw[central + 10:central + 12] = struct.pack("<H", 97)
    elif how == "encrypted":
        raw[local + 6] |= 1
        raw[central + 8] |= 1
    return bytes(raw)


@pytest.mark.parametrize("how", ["crc", "deflate", "method", "encrypted"])
def test_a_zip_with_a_damaged_entry_is_refused_naming_it_and_imports_nothing(api, control, how):
    before = api.get("/api/v1/presets").get_json()["presets"]
    r = api.req("POST", "/api/v1/presets-import", data=_damaged_zip(how), headers={"Content-Type": "application/zip"})
    assert r.status_code == 422, r.get_data(as_text=True)
    msg = error_of(r)
    assert "nothing was changed" in msg and "bad.json: damaged or unreadable entry" in msg, msg
    assert api.get("/api/v1/presets").get_json()["presets"] == before


def test_a_zip_import_refuses_names_the_web_cannot_address(api, control):
    """A name the web refuses everywhere ('../stuck', '.hidden') could be imported in a zip and then
    never be recalled, renamed, exported or deleted: the whole zip is refused instead."""
    before = api.get("/api/v1/presets").get_json()["presets"]
    for bad in ("../stuck", ".also stuck", "a/./b", "\\x"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("fine.json", json.dumps(preset_doc("Fine one")))
            z.writestr("x.json", json.dumps(preset_doc(bad)))
        r = api.req("POST", "/api/v1/presets-import", data=buf.getvalue(), headers={"Content-Type": "application/zip"})
        assert r.status_code == 422, (bad, r.get_data(as_text=True))
        msg = error_of(r)
        assert "nothing was changed" in msg and "x.json" in msg and ("path" in msg or "start with '.'" in msg), msg
        r = api.post("/api/v1/presets-import", json=preset_doc(bad))
        assert r.status_code == 400 and ("path" in error_of(r) or "start with '.'" in error_of(r)), bad
    assert api.get("/api/v1/presets").get_json()["presets"] == before
    # what a zip may hold, the web can address
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("x.json", json.dumps(preset_doc("AC/DC ../master")))
    r = api.req("POST", "/api/v1/presets-import", data=buf.getvalue(), headers={"Content-Type": "application/zip"})
    assert r.status_code == 201, r.get_data(as_text=True)
    for method, path in (("GET", "/export"), ("POST", "/recall"), ("DELETE", "")):
        r = api.req(method, "/api/v1/presets/AC%2FDC%20..%2Fmaster" + path)
        assert r.status_code == 200, (path, r.get_data(as_text=True))


# -- captures -----------------------------------------------------------------------------
def test_capture_start_stop_list_download_range_delete(api, control):
    r = api.post("/api/v1/capture/start", json={"tap": "output", "format": "PCM_24"})
    assert r.status_code == 201, r.get_json()
    r = api.post("/api/v1/capture/start", json={})
    assert r.status_code == 409 and "already" in error_of(r)
    assert api.post("/api/v1/capture/stop", json={}).status_code == 200
    assert api.post("/api/v1/capture/stop", json={}).status_code == 409
    caps = api.get("/api/v1/captures").get_json()["captures"]
    assert len(caps) == 1
    name = caps[0]["name"]
    rec = api.get(f"/api/v1/captures/{name}").get_json()
    assert rec["file"] == f"{name}.wav"
    full = api.get(f"/api/v1/captures/{name}/download")
    assert full.status_code == 200 and full.headers["Accept-Ranges"] == "bytes"
    size = len(full.data)
    assert size == int(full.headers["Content-Length"]) > 44
    assert full.data[:4] == b"RIFF"
    part = api.get(f"/api/v1/captures/{name}/download", headers={"Range": "bytes=0-11"})
    assert part.status_code == 206 and part.data == full.data[:12]
    assert part.headers["Content-Range"] == f"bytes 0-11/{size}"
    tail = api.get(f"/api/v1/captures/{name}/download", headers={"Range": "bytes=-4"})
    assert tail.status_code == 206 and tail.data == full.data[-4:]
    bad = api.get(f"/api/v1/captures/{name}/download", headers={"Range": f"bytes={size + 10}-"})
    assert bad.status_code == 416
    assert api.req("DELETE", f"/api/v1/captures/{name}").status_code == 200
    assert api.get(f"/api/v1/captures/{name}/download").status_code == 404


def test_capture_refusals(api, control, tmp_path, _isolated_home):
    secret = tmp_path / "secret.wav"
    write_wav(secret, seconds=0.1)
    link = _isolated_home / "captures" / "link.wav"
    link.symlink_to(secret)
    cases = [
        ("POST", "/api/v1/capture/start", {"tap": "sideways"}, 400, "'tap' must be one of"),
        ("POST", "/api/v1/capture/start", {"format": "MP3"}, 400, "'format' must be one of"),
        ("POST", "/api/v1/capture/start", {"max_seconds": -1}, 400, "max_seconds"),
        ("POST", "/api/v1/capture/start", {"max_seconds": "60"}, 400, "max_seconds"),
        ("POST", "/api/v1/capture/start", {"bogus": 1}, 400, "unknown field"),
        ("GET", "/api/v1/captures/nope", None, 404, "no capture named"),
        ("GET", "/api/v1/captures/nope/download", None, 404, "no capture named"),
        ("GET", "/api/v1/captures/..%2F..%2Fstate/download", None, 400, "path"),
        ("GET", "/api/v1/captures/%2Fetc%2Fpasswd/download", None, 404, "not found"),
        ("GET", "/api/v1/captures/link/download", None, 403, "outside the captures folder"),
        ("DELETE", "/api/v1/captures/..", None, 400, "path"),
        ("DELETE", "/api/v1/captures/nope", None, 404, "no capture named"),
    ]
    for method, path, body, status, needle in cases:
        r = api.req(method, path, json=body)
        assert r.status_code == status, (path, r.get_data(as_text=True))
        assert needle in error_of(r), (path, error_of(r))
    assert control.engine.capturing is None and secret.exists()


def test_capture_with_engine_down_is_503(api, control):
    control.engine.running = False
    r = api.post("/api/v1/capture/start", json={})
    assert r.status_code == 503 and "not running" in error_of(r)


def test_loudness_curve_of_a_capture(api, control, _isolated_home):
    write_wav(_isolated_home / "captures" / "tone.wav", seconds=4.0)
    r = api.get("/api/v1/captures/tone/loudness")
    assert r.status_code == 200, r.get_data(as_text=True)
    curve = r.get_json()
    assert curve["step_s"] == pytest.approx(0.5)
    st = [v for v in curve["short_term_lufs"] if v is not None]
    assert st and -20 < st[-1] < -5  # a -12 dBFS sine is about -12.6 LUFS
    (_isolated_home / "captures" / "junk.wav").write_bytes(b"RIFF0000WAVEjunk")
    r = api.get("/api/v1/captures/junk/loudness")
    assert r.status_code == 422 and "cannot measure" in error_of(r)


# -- system -------------------------------------------------------------------------------
def test_system_info(api):
    s = api.get("/api/v1/system").get_json()
    assert s["version"] and s["engine"]["running"] is True and s["disk"]["free_bytes"] > 0
    assert s["web"]["sse_max_clients"] <= s["web"]["threads"] - 4
    assert isinstance(s["log"], list)


def test_system_shows_the_simulated_device_the_engine_runs_and_keeps_the_configs(api, control, _isolated_home):
    """``masterbox demo`` starts the engine with ``--backend sim`` whatever [audio] says (the stand-in
    engine answers as that one does: backend sim, no device of its own). The page's form showed the config's
    device ("default"), not what runs; now ``audio_running`` says what runs, ``audio_simulated`` that it is
    the simulated device, and ``audio`` is still the config file's, which nothing wrote."""
    import os
    from pathlib import Path

    from webui.api.system import SIMULATED_DEVICE

    config = Path(os.environ["MASTERBOX_CONFIG"])
    config.write_text('[audio]\nbackend = "alsa"\ndevice = "hw:CARD=Hat"\nrate = 48000\nperiod = 128\nperiods = 2\n')
    before = config.read_bytes()

    class DemoEngine(type(control.engine)):
        def stop_engine(self):      # what Control's config reader asks an engine client for (never called here)
            raise AssertionError("nothing restarts the engine in this test")

    control.engine.__class__ = DemoEngine
    s = api.get("/api/v1/system").get_json()
    assert s["audio_simulated"] is True
    assert s["audio_running"] == {"backend": "sim", "device": SIMULATED_DEVICE, "rate": 48000, "period": 128,
                                  "periods": 2}
    assert s["audio"].get("device") == "hw:CARD=Hat", s["audio"]
    assert s["audio"]["backend"] == "alsa"
    assert config.read_bytes() == before

    class AlsaEngine(DemoEngine):
        def status(self):
            st = super().status()
            st["device"] = {"backend": "alsa", "rate": 96000, "period": 256, "periods": 3,
                            "capture_device": "hw:CARD=Hat", "playback_device": "hw:CARD=Hat"}
            return st

    control.engine.__class__ = AlsaEngine       # the same stand-in, answering as an engine on ALSA
    s = api.get("/api/v1/system").get_json()
    assert s["audio_simulated"] is False
    assert s["audio_running"] == {"backend": "alsa", "device": "hw:CARD=Hat", "rate": 96000, "period": 256,
                                  "periods": 3}
    control.engine.running = False
    s = api.get("/api/v1/system").get_json()
    assert s["engine"]["running"] is False and s["audio_running"] is None and s["audio_simulated"] is False


def test_system_says_why_the_engine_could_not_start(api, control, masterbox_cmd, tmp_path):
    """An engine whose audio device is not there exits at once, and its supervisor starts it again
    and again: the System page used to say only "not running (connection refused)". Now it shows the
    reason the real engine recorded next to its socket (a real `masterbox engine` on a device name
    ALSA does not know)."""
    from firmware.control_client import EngineClient

    sock = tmp_path / "run" / "engine.sock"
    r = subprocess.run([*masterbox_cmd, "engine", "--backend", "alsa", "--device", "nosuchcard", "--socket", str(sock),
                        "--duration", "1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "nosuchcard" in r.stderr, r.stderr
    control.engine = EngineClient(sock)
    eng = api.get("/api/v1/system").get_json()["engine"]
    assert eng["running"] is False and "nosuchcard" in eng["start_failure"]["error"], eng
    assert eng["start_failure"]["device"]["playback_device"] == "nosuchcard" and eng["start_failure"]["age_s"] >= 0


def test_audio_settings_validated_before_refusal(api):
    for bad, needle in (({"rate": 12345}, "'rate' must be one of"), ({"period": 100}, "'period'"),
                        ({"periods": 1}, "'periods'"), ({"device": ""}, "'device'"), ({}, "nothing to change"),
                        ({"rate": "48000"}, "must be an integer"), ({"colour": "red"}, "unknown field")):
        r = api.post("/api/v1/system/audio", json=bad)
        assert r.status_code == 400 and needle in error_of(r), (bad, error_of(r))
    r = api.post("/api/v1/system/audio", json={"rate": 48000})
    assert r.status_code == 409 and "config file" in error_of(r)


def test_audio_settings_in_a_read_only_config_folder_are_a_503_naming_the_file(api, control, monkeypatch, tmp_path):
    """On the box the config folder is read-only to control unless its unit lists it in ReadWritePaths=
    (ProtectSystem=strict): the write fails with EROFS, which no test running as root can provoke, so
    the write is made to fail as the kernel does there. (The real EACCES of a folder the service user
    cannot write: tests/system/test_installer.py.) The answer names the file, the reason and what to
    do; the engine is not stopped and the file keeps its text."""
    import firmware.audio_settings as audio_settings

    monkeypatch.setenv("MASTERBOX_SUPERVISED", "1")
    config = tmp_path / "masterbox.toml"
    config.write_text("[audio]\nperiod = 128  # mine\n")
    stops = []
    control.engine.stop_engine = lambda: stops.append(1)

    def read_only_folder(path, data, mode=0o644):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path.parent / f".{path.name}.x.tmp"))

    monkeypatch.setattr(audio_settings, "write_atomic", read_only_folder)
    r = api.post("/api/v1/system/audio", json={"period": 256})
    assert r.status_code == 503, r.get_json()
    assert error_of(r).startswith(f"cannot write {config}: read-only file system; nothing was changed")
    assert "ReadWritePaths=" in error_of(r) and r.get_json()["config"] == str(config)
    assert stops == [] and config.read_text() == "[audio]\nperiod = 128  # mine\n"


# -- panel --------------------------------------------------------------------------------
def test_panel_absent_is_404(api):
    r = api.post("/api/v1/panel/knobs/input/turn", json={"detents": 1})
    assert r.status_code == 404 and "without a front panel" in error_of(r)
    assert api.get("/api/v1/panel").get_json() == {"knobs": {}, "buttons": {}}


# -- pages --------------------------------------------------------------------------------
def test_pages_render(api):
    for page in ("live", "chain", "presets", "captures", "system"):
        r = api.get(f"/{page}")
        assert r.status_code == 200 and b"masterbox" in r.data, page
    assert api.get("/static/css/app.css").status_code == 200
    assert api.get("/static/js/live.js").status_code == 200
    r = api.get("/nope", headers={"Accept": "text/html"})
    assert r.status_code == 404 and b"<html" in r.data


# -- reference track (REF) ------------------------------------------------------------------
# The real ReferenceTrack (control.reference) prepares a real capture in its worker
# (python -m firmware.reference); the stand-in engine maps it by its header and level-matches it
# as the engine's control channel does, to the stand-in meters' master (-14 LUFS integrated).
def _record(folder, name="record", seconds=3.0, rate=44100, peak_dbfs=-1.0):
    import soundfile as sf

    from dsp.programme import render_programme

    path = folder / f"{name}.wav"
    sf.write(str(path), render_programme(seconds, rate, seed=5, peak_dbfs=peak_dbfs), rate, subtype="PCM_24")
    return path


def test_reference_needs_login_and_csrf(api, anon, control, _isolated_home):
    _record(_isolated_home / "captures")
    calls = list(control.engine.calls)
    for method, path, body in (("GET", "/api/v1/reference", None), ("PUT", "/api/v1/reference", {"capture": "record"}),
                               ("POST", "/api/v1/reference/switch", {"on": True}),
                               ("DELETE", "/api/v1/reference", None)):
        r = anon.req(method, path, json=body)
        assert r.status_code == 401, (method, path, r.get_data(as_text=True))
        if method != "GET":
            r = api.req(method, path, json=body, csrf=False)
            assert r.status_code == 403 and "CSRF" in error_of(r), (method, path)
    assert control.engine.calls == calls and control.reference.info is None


def test_reference_load_switch_and_clear(api, control, _isolated_home):
    import soundfile as sf

    from dsp.meter import LoudnessMeter
    from firmware.reference import match_gain_db, read_info

    folder = _isolated_home / "captures"
    _record(folder)
    assert api.get("/api/v1/reference").get_json() == {"reference": {
        "capture": None, "preparing": None, "error": None, "prepared": None, "engine": None}}

    r = api.req("PUT", "/api/v1/reference", json={"capture": "record"})
    assert r.status_code == 200, r.get_data(as_text=True)
    ref = r.get_json()["reference"]
    prepared = ref["prepared"]
    assert ref["capture"] == "record" and ref["preparing"] is None and ref["error"] is None
    # prepared at the engine's rate from the 44.1 kHz capture, and handed to the engine switched off
    assert (prepared["rate"], prepared["source_rate"], prepared["frames"]) == (48000, 44100, 3 * 48000)
    assert prepared["truncated"] is False and prepared["duration_s"] == 3.0
    assert control.engine.calls[-1] == ("reference_load", str(control.reference.path))
    assert read_info(control.reference.path)["frames"] == prepared["frames"]
    # its loudness, measured on what the engine will play: agrees with the box's meter on the capture itself
    y, rate = sf.read(str(folder / "record.wav"))
    meter = LoudnessMeter(rate, 2)
    meter.process(y)
    assert prepared["integrated_lufs"] == pytest.approx(meter.readings()["integrated_lufs"], abs=0.1)
    assert ref["engine"]["on"] is False and ref["engine"]["heard"] is False
    assert api.get("/api/v1/reference").get_json()["reference"] == ref

    # REF on, level-matched: the engine's rule (the master's -14 LUFS, the raise held under the ceiling)
    r = api.post("/api/v1/reference/switch", json={"on": True})
    assert r.status_code == 200, r.get_data(as_text=True)
    eng = r.get_json()["reference"]["engine"]
    gain, short = match_gain_db(-14.0, prepared["integrated_lufs"], prepared["true_peak_dbtp"], -1.0)
    assert eng["on"] is True and eng["matched_to"] == "integrated" and eng["master_lufs"] == -14.0
    assert (eng["gain_db"], eng["short_by_db"]) == (gain, short)
    assert api.get("/api/v1/meters").get_json()["meters"]["reference"] is True      # the Live page's flag
    # a gain given, and off again
    r = api.post("/api/v1/reference/switch", json={"on": True, "gain_db": -6})
    eng = r.get_json()["reference"]["engine"]
    assert r.status_code == 200 and eng["gain_db"] == -6.0 and eng["matched_to"] == "given"
    assert control.engine.calls[-1] == ("reference", True, -6.0)
    r = api.post("/api/v1/reference/switch", json={"on": False, "gain_db": None})
    assert r.status_code == 200 and r.get_json()["reference"]["engine"]["on"] is False
    assert api.get("/api/v1/meters").get_json()["meters"]["reference"] is False

    # cleared: nothing to switch any more
    r = api.req("DELETE", "/api/v1/reference")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["reference"] == {"capture": None, "preparing": None, "error": None, "prepared": None,
                                         "engine": None}
    calls = list(control.engine.calls)
    r = api.post("/api/v1/reference/switch", json={"on": True})
    assert r.status_code == 409 and "no reference is loaded" in error_of(r)
    assert control.engine.calls == calls
    assert api.req("DELETE", "/api/v1/reference").status_code == 200          # clearing twice is no error


def test_reference_matched_to_a_master_without_loudness_is_0_db(api, control, _isolated_home):
    _record(_isolated_home / "captures")
    assert api.req("PUT", "/api/v1/reference", json={"capture": "record"}).status_code == 200
    control.engine.master_lufs = None        # e.g. just after a meter reset, nothing measured yet
    eng = api.post("/api/v1/reference/switch", json={"on": True}).get_json()["reference"]["engine"]
    assert eng["gain_db"] == 0.0 and eng["matched_to"] is None and eng["short_by_db"] is None


def test_reference_refusals_change_nothing(api, control, _isolated_home):
    folder = _isolated_home / "captures"
    _record(folder)
    (folder / "junk.wav").write_bytes(b"RIFF0000WAVEjunk" + bytes(2000))
    (folder / "tiny.wav").write_bytes(b"")
    _record(folder, "growing", seconds=1.0)
    (folder / f".growing{'.recording'}").write_text(json.dumps({"pid": os.getpid(), "files": ["growing.wav"]}))
    assert api.req("PUT", "/api/v1/reference", json={"capture": "record"}).status_code == 200
    before, calls = api.get("/api/v1/reference").get_json(), list(control.engine.calls)
    cases = [
        ("PUT", {"capture": "nope"}, 404, "no capture named 'nope'"),
        ("PUT", {}, 400, "missing field 'capture'"),
        ("PUT", {"capture": None}, 400, "missing field 'capture'"),
        ("PUT", {"capture": 5}, 400, "must be a string"),
        ("PUT", {"capture": ""}, 400, "must not be empty"),
        ("PUT", {"capture": "../state"}, 400, "path"),
        ("PUT", {"capture": "record", "gain_db": 0}, 400, "unknown field(s): gain_db"),
        ("PUT", [1], 400, "JSON object"),
        ("PUT", {"capture": "growing"}, 409, "'growing' is being recorded"),
        ("POST", {}, 400, "missing field 'on'"),
        ("POST", {"on": "yes"}, 400, "'on' must be true or false"),
        ("POST", {"on": 1}, 400, "'on' must be true or false"),
        ("POST", {"on": True, "gain_db": 24.5}, 400, "-24..24"),
        ("POST", {"on": True, "gain_db": -100}, 400, "-24..24"),
        ("POST", {"on": True, "gain_db": "loud"}, 400, "'gain_db' must be"),
        ("POST", {"on": True, "gain_db": True}, 400, "'gain_db' must be"),
        ("POST", {"on": True, "gain_db": [1]}, 400, "'gain_db' must be"),
        ("POST", {"on": True, "level_match": True}, 400, "unknown field(s): level_match"),
    ]
    for method, body, status, needle in cases:
        path = "/api/v1/reference" if method == "PUT" else "/api/v1/reference/switch"
        r = api.req(method, path, json=body)
        assert r.status_code == status, (body, r.get_data(as_text=True))
        assert needle in error_of(r), (body, error_of(r))
    # NaN and infinity are not numbers of dB (Python's JSON reader takes them), nor is a 400-digit integer
    for raw in ('{"on": true, "gain_db": NaN}', '{"on": true, "gain_db": Infinity}', '{"on": true, "gain_db": 1e400}',
                '{"on": true, "gain_db": -1' + "0" * 400 + "}"):
        r = api.req("POST", "/api/v1/reference/switch", data=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "-24..24" in error_of(r), raw
    r = api.req("PUT", "/api/v1/reference", data='{"capture": "record"}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert control.engine.calls == calls and api.get("/api/v1/reference").get_json() == before
    # files that are not usable audio: the worker's reason, and the reference stays the one it was
    for name in ("junk", "tiny"):
        r = api.req("PUT", "/api/v1/reference", json={"capture": name})
        assert r.status_code == 400, (name, r.get_data(as_text=True))
        # named as the page names it, not by the box's folder
        assert error_of(r).startswith(f"{name}.wav: not an audio file that can be read"), error_of(r)
        now = api.get("/api/v1/reference").get_json()["reference"]
        assert now["capture"] == "record" and now["error"] == error_of(r)     # the page can say why
    assert control.engine.calls == calls


def test_reference_while_busy_or_without_an_engine(api, control, _isolated_home):
    _record(_isolated_home / "captures")
    control.reference.preparing = "another"          # as while another request's worker prepares it
    r = api.req("PUT", "/api/v1/reference", json={"capture": "record"})
    assert r.status_code == 409 and "busy: another is being prepared" in error_of(r)
    assert api.get("/api/v1/reference").get_json()["reference"]["preparing"] == "another"
    control.reference.preparing = None
    control.engine.running = False
    r = api.req("PUT", "/api/v1/reference", json={"capture": "record"})
    assert r.status_code == 503 and "not running" in error_of(r)
    assert api.get("/api/v1/reference").get_json()["reference"]["engine"] is None
    control.engine.running = True
    assert api.req("PUT", "/api/v1/reference", json={"capture": "record"}).status_code == 200
    control.engine.running = False
    r = api.post("/api/v1/reference/switch", json={"on": True})
    assert r.status_code == 503 and "not running" in error_of(r)
    # a clear needs no engine (one that is down has no reference to drop), and lasts: the prepared copy goes,
    # so a restart of the control process does not bring it back
    from firmware import paths
    from firmware.reference_track import ReferenceTrack

    assert paths.reference_file().exists()
    r = api.req("DELETE", "/api/v1/reference")
    assert r.status_code == 200 and r.get_json()["reference"]["capture"] is None
    assert not paths.reference_file().exists()
    assert ReferenceTrack(control.captures, control.engine, control._engine_call).info is None
