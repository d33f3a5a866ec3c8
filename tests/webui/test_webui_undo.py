"""POST /api/v1/state/undo and /state/redo (firmware/undo.py; its rules: tests/state/test_undo.py)."""

from __future__ import annotations


def test_api_undo_redo(api, control):
    assert api.req("POST", "/api/v1/state/undo", json={}).status_code == 409
    assert api.req("PATCH", "/api/v1/state", json={"values": {"st.width": 140.0}}).status_code == 200
    state = api.get("/api/v1/state").get_json()
    assert state["can_undo"] and not state["can_redo"]
    r = api.req("POST", "/api/v1/state/undo", json={})
    assert r.status_code == 200 and r.get_json()["values"]["st.width"] == 100.0 and r.get_json()["can_redo"]
    assert control.state.get("st.width") == 100.0
    r = api.req("POST", "/api/v1/state/redo", json={})
    assert r.status_code == 200 and r.get_json()["values"]["st.width"] == 140.0
    assert api.req("POST", "/api/v1/state/redo", json={}).status_code == 409
