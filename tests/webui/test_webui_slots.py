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


def test_an_import_over_the_preset_a_slot_came_from_marks_that_slot_modified(api, control):
    """Import ?overwrite=1 over the active preset (and over the one the other slot came from): what is
    heard is no longer the stored preset, so the state says modified, as after deleting it; a Save is
    then the user's choice, not a silent overwrite of what was imported."""
    import io
    import json
    import zipfile

    from mbweb_helpers import preset_doc

    def imp(*docs):
        if len(docs) == 1:
            return api.post("/api/v1/presets-import?overwrite=1", json=docs[0])
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for i, d in enumerate(docs):
                z.writestr(f"{i}.json", json.dumps(d))
        return api.req("POST", "/api/v1/presets-import?overwrite=1", data=buf.getvalue(),
                       headers={"Content-Type": "application/zip"})

    assert imp(preset_doc("Mine", **{"eq1.gain_db": 0.8}), preset_doc("Theirs", **{"st.width": 120.0})).status_code \
        == 201
    assert api.post("/api/v1/presets/Theirs/recall", json={}).status_code == 200
    assert api.req("POST", "/api/v1/state/slot", json={"slot": 2}).status_code == 200
    assert api.post("/api/v1/presets/Mine/recall", json={}).status_code == 200
    st = api.get("/api/v1/state").get_json()
    assert (st["active_preset"], st["modified"], st["slots"]["other_preset"], st["slots"]["other_modified"]) \
        == ("Mine", False, "Theirs", False)
    # the same values again: still the stored preset, nothing to say
    assert imp(preset_doc("Mine", **{"eq1.gain_db": 0.8})).status_code == 201
    assert api.get("/api/v1/state").get_json()["modified"] is False
    # other values, under the name spelt in another case: the slot is modified and follows the spelling
    r = imp(preset_doc("MINE", **{"eq1.gain_db": -5.0}))
    assert r.status_code == 201, r.get_json()
    st = api.get("/api/v1/state").get_json()
    assert (st["active_preset"], st["modified"], st["values"]["eq1.gain_db"]) == ("MINE", True, 0.8)
    assert api.get("/api/v1/presets/MINE").get_json()["params"]["eq1.gain_db"] == -5.0
    assert st["slots"]["other_modified"] is False
    # a zip replacing the preset the other slot came from marks that slot
    r = imp(preset_doc("Theirs", **{"st.width": 80.0}), preset_doc("Unrelated"))
    assert r.status_code == 201, r.get_json()
    st = api.get("/api/v1/state").get_json()
    assert (st["slots"]["other_preset"], st["slots"]["other_modified"]) == ("Theirs", True)
    assert control.state.snapshot()["slots"]["other_values"]["st.width"] == 120.0


def test_a_presets_command_from_a_shell_marks_the_slot_from_the_preset_it_replaced_or_deleted(
        api, control, masterbox_cmd, tmp_path):
    """``masterbox presets import --overwrite`` and ``delete`` run from a shell (another process, the real
    console command) while the box plays that preset: the box notices on its next look at the presets
    (``Control.follow_presets``, every 0.5 s in the running box) and the slot says modified, as after
    the same change through the web. A command that changes another preset leaves it alone."""
    import json
    import subprocess

    from mbweb_helpers import preset_doc

    def presets(*args):
        r = subprocess.run([*masterbox_cmd, "presets", *map(str, args)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr

    def doc(name, **values):
        f = tmp_path / f"{name}-{len(list(tmp_path.iterdir()))}.json"
        f.write_text(json.dumps(preset_doc(name, **values)))
        return f

    presets("import", doc("Mine", **{"eq1.gain_db": 0.8}))
    presets("import", doc("Theirs", **{"st.width": 120.0}))
    assert api.post("/api/v1/presets/Theirs/recall", json={}).status_code == 200
    assert api.req("POST", "/api/v1/state/slot", json={"slot": 2}).status_code == 200
    assert api.post("/api/v1/presets/Mine/recall", json={}).status_code == 200

    def state():
        control.follow_presets()
        st = api.get("/api/v1/state").get_json()
        return st["active_preset"], st["modified"], st["slots"]["other_preset"], st["slots"]["other_modified"]

    assert state() == ("Mine", False, "Theirs", False)
    presets("import", doc("Unrelated"))
    presets("import", "--overwrite", doc("Mine", **{"eq1.gain_db": 0.8}))   # the values the slot holds
    assert state() == ("Mine", False, "Theirs", False)
    presets("import", "--overwrite", doc("Mine", **{"eq1.gain_db": -5.0}))
    assert state() == ("Mine", True, "Theirs", False)
    assert control.state.values["eq1.gain_db"] == 0.8      # what is heard is not changed by the import
    presets("delete", "Theirs")
    assert state() == ("Mine", True, "Theirs", True)
