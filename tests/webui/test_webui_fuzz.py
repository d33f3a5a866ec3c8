"""Hostile input, generated: no request body or name ever produces a 500, and a refusal changes nothing."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                      st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40))
JSON = st.recursive(JSON_LEAF, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                    max_leaves=12)
KEYS = st.sampled_from(["values", "on", "level_match", "seconds", "name", "new_name", "description", "tap",
                        "format", "max_seconds", "detents", "hold_s", "password", "current", "new", "rate",
                        "period", "periods", "device", "capture", "gain_db", "mode", "slot", "service"])
BODY = st.one_of(JSON, st.dictionaries(KEYS, JSON, max_size=4),
                 st.builds(lambda v: {"values": v}, st.dictionaries(st.sampled_from(
                     ["in.trim_db", "eq1.type", "mb.on", "st.width", "nope", ""]), JSON, max_size=3)),
                 # a listening mode, a near miss or anything, now and then with a field too many
                 st.builds(lambda m, extra: {"mode": m, **extra},
                           st.one_of(st.sampled_from(["stereo", "mono", "side", "left", "right", "Mono", "wide", ""]),
                                     JSON), st.dictionaries(KEYS, JSON, max_size=1)),
                 # a streaming service to preview, a near miss or anything
                 st.builds(lambda v: {"service": v}, st.one_of(st.sampled_from(
                     ["off", "spotify", "apple_music", "Spotify", "napster", ""]), JSON)),
                 # a settings slot, a near miss or anything
                 st.builds(lambda n: {"slot": n}, st.one_of(st.sampled_from([1, 2, 0, 3, 1.0, "2", True]), JSON)))
ENDPOINTS = [
    ("PATCH", "/api/v1/state"), ("POST", "/api/v1/bypass"), ("POST", "/api/v1/learn/start"),
    ("POST", "/api/v1/presets"), ("POST", "/api/v1/presets/loud/rename"), ("POST", "/api/v1/presets/loud/duplicate"),
    ("POST", "/api/v1/presets-import"), ("POST", "/api/v1/capture/start"), ("POST", "/api/v1/system/audio"),
    ("POST", "/api/v1/auth/password"), ("POST", "/api/v1/panel/knobs/width/turn"),
    ("PUT", "/api/v1/reference"), ("POST", "/api/v1/reference/switch"), ("POST", "/api/v1/monitor"),
    ("POST", "/api/v1/state/slot"), ("POST", "/api/v1/preview"),
]
NAME = st.text(min_size=1, max_size=30)

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def snapshot(control):
    presets = sorted((p["name"] or "", p["file"] or "") for p in control.presets.list())
    return (control.state.values, control.state.active_preset, control.state.snapshot()["slots"], presets,
            control.bypassed, control.engine.capturing,
            control.reference.info, control.engine.reference_status(), control.monitor_mode,
            control.engine.monitor_mode, control.preview, control.engine.preview_service)


@SETTINGS
@given(endpoint=st.sampled_from(ENDPOINTS), body=BODY)
def test_random_bodies_never_500_and_refusals_change_nothing(api, control, endpoint, body):
    method, path = endpoint
    before = snapshot(control)
    r = api.req(method, path, data=json.dumps(body), headers={"Content-Type": "application/json"})
    assert r.status_code < 500 or r.status_code == 503, (path, body, r.get_data(as_text=True))
    if r.status_code >= 400:
        assert r.get_json()["error"]
        assert snapshot(control) == before, (path, body)
    control.learn_stop()
    if control.engine.capturing:
        control.capture_stop()


@SETTINGS
@given(name=NAME, action=st.sampled_from(["GET", "recall", "export", "DELETE", "download", "loudness"]))
def test_random_names_never_500(api, control, name, action):
    from urllib.parse import quote

    before = snapshot(control)
    q = quote(name, safe="")
    path = {"GET": f"/api/v1/presets/{q}", "recall": f"/api/v1/presets/{q}/recall",
            "export": f"/api/v1/presets/{q}/export", "DELETE": f"/api/v1/captures/{q}",
            "download": f"/api/v1/captures/{q}/download", "loudness": f"/api/v1/captures/{q}/loudness"}[action]
    method = {"recall": "POST", "DELETE": "DELETE"}.get(action, "GET")
    r = api.req(method, path, json={} if method == "POST" else None)
    assert r.status_code < 500, (path, r.get_data(as_text=True))
    if r.status_code >= 400:
        assert r.get_json()["error"]
        assert snapshot(control) == before
