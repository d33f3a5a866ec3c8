"""POST /api/v1/state/slot and /state/slot/copy: the settings slots through the web API (their rules:
tests/state/test_settings_slots.py)."""

from __future__ import annotations

import pytest


def test_api_switch_copy_and_state(api, control):
    state = api.get("/api/v1/state").get_json()
    assert state["slots"] == {"current": 1, "other_empty": True, "other_preset": None,
                              "other_modified": False, "differs": [], "other_values": {}}
    r = api.req("POST", "/api/v1/state/slot", json={"slot": 2})
    assert r.status_code == 200 and r.get_json()["slots"]["current"] == 2
    assert api.req("PATCH", "/api/v1/state", json={"values": {"st.width": 140.0}}).status_code == 200
    slots = api.get("/api/v1/state").get_json()["slots"]
    assert slots["differs"] == ["st.width"] and slots["other_values"] == {"st.width": 100.0}
    r = api.req("POST", "/api/v1/state/slot", json={"slot": 1})
    assert r.get_json()["values"]["st.width"] == 100.0 and control.state.get("st.width") == 100.0
    assert control.engine.params["st.width"] == 100.0            # the engine was told
    r = api.req("POST", "/api/v1/state/slot/copy", json={})
    assert r.status_code == 200 and r.get_json()["slots"]["differs"] == []
    r = api.req("POST", "/api/v1/state/undo", json={})              # the copy is one undo step
    assert r.get_json()["slots"]["differs"] == ["st.width"] and r.get_json()["slots"]["current"] == 1


@pytest.mark.parametrize("body, why", [
    ({"slot": 3}, "must be 1 or 2"), ({"slot": "2"}, "must be"), ({"slot": True}, "got a boolean"),
    ({}, "missing field 'slot'"), ({"slot": 2, "copy": True}, "unknown field"),
])
def test_api_refuses_a_bad_slot_and_changes_nothing(api, control, body, why):
    r = api.req("POST", "/api/v1/state/slot", json=body)
    assert r.status_code == 400 and why in r.get_json()["error"]
    assert control.state.snapshot()["slots"]["current"] == 1 and control.state.snapshot()["slots"]["other_empty"]
