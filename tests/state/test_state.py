"""StateStore: persisted within a second, restored at boot, corrupt files moved aside, safe mode."""

from __future__ import annotations

import json
import time

import pytest

from dsp import schema
from firmware import presets as pr
from firmware.presets import PresetStore
from firmware.state import StateStore


@pytest.fixture
def store(tmp_path):
    factory = tmp_path / "factory"
    factory.mkdir()
    transparent = {**schema.defaults(), "lim.ceiling_dbtp": -0.5}
    for name, params in (("transparent", transparent), ("loud", {**schema.defaults(), "out.drive_db": 6.0})):
        doc = {"format": pr.FORMAT, "schema_version": 1, "name": name, "params": params}
        (factory / f"{name}.json").write_text(json.dumps(doc))
    return PresetStore(tmp_path / "user", factory)


def _wait_for(pred, timeout=2.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        time.sleep(0.01)
    raise AssertionError("timed out")


def _disk(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def test_first_boot_runs_transparent_and_changes_persist_within_a_second(tmp_path, store):
    path = tmp_path / "state.json"
    st = StateStore(path, store)
    assert st.active_preset == "transparent" and not st.safe_mode and st.get("lim.ceiling_dbtp") == -0.5
    _wait_for(path.exists)
    st.set({"eq1.gain_db": 2.5}, source="test")
    took = _wait_for(lambda: (_disk(path) or {}).get("values", {}).get("eq1.gain_db") == 2.5)
    assert took < 1.0
    # the backup follows right after (same bytes, written second)
    _wait_for(lambda: (_disk(path.with_name("state.json.bak")) or {}).get("values", {}).get("eq1.gain_db") == 2.5)
    st.close()
    again = StateStore(path, store)
    assert again.get("eq1.gain_db") == 2.5 and again.modified and again.active_preset == "transparent"
    again.close()


def test_burst_of_changes_is_one_write(tmp_path, store):
    path = tmp_path / "state.json"
    st = StateStore(path, store)
    _wait_for(path.exists)
    writes = []
    orig = st.flush
    st.flush = lambda: writes.append(1) or orig()
    for i in range(100):
        st.set({"eq1.gain_db": i / 10})
    _wait_for(lambda: (_disk(path) or {}).get("values", {}).get("eq1.gain_db") == 9.9)
    assert len(writes) <= 3
    st.close()


def test_set_validates_and_refuses_everything_if_one_is_bad(tmp_path, store):
    st = StateStore(tmp_path / "state.json", store, autosave=False)
    with pytest.raises(schema.SchemaErrors) as e:
        st.set({"eq1.gain_db": 3.0, "eq2.gain_db": 99})
    assert [x.field for x in e.value.errors] == ["eq2.gain_db"]
    assert st.get("eq1.gain_db") == 0.0


def test_subscribe_recall_and_modified(tmp_path, store):
    st = StateStore(tmp_path / "state.json", store, autosave=False)
    seen = []
    unsub = st.subscribe(lambda changes, source: seen.append((changes, source)))
    st.set({"eq1.gain_db": 1.0}, source="panel")
    assert seen[-1] == ({"eq1.gain_db": 1.0}, "panel") and st.modified
    st.set({"eq1.gain_db": 1.0}, source="panel")  # no change, no callback
    assert len(seen) == 1
    changes = st.recall("loud")
    assert changes["out.drive_db"] == 6.0 and changes["eq1.gain_db"] == 0.0
    assert st.active_preset == "loud" and not st.modified and seen[-1][1] == "recall"
    unsub()
    st.set({"eq1.gain_db": 2.0})
    assert len(seen) == 2


def test_a_failing_subscriber_does_not_break_the_others(tmp_path, store):
    st = StateStore(tmp_path / "state.json", store, autosave=False)
    got = []
    st.subscribe(lambda c, s: 1 / 0)
    st.subscribe(lambda c, s: got.append(c))
    st.set({"st.width": 120.0})
    assert got == [{"st.width": 120.0}]


BAD_STATES = {
    "empty": b"",
    "truncated": None,  # filled in from a good file
    "garbage": b"\x00\xff" * 100,
    "not json": b"{values: 1",
    "wrong type": b"[1, 2, 3]",
    "out of range": None,
    "huge": b"{" + b" " * (2 * 1024 * 1024),
    "deep": b"[" * 200000,
    "hostile preset": None,
    "modified not a bool": None,
}


@pytest.mark.parametrize("kind", list(BAD_STATES))
def test_corrupt_state_is_moved_aside_and_boot_uses_the_good_copy(tmp_path, store, kind):
    path = tmp_path / "state.json"
    st = StateStore(path, store)
    st.set({"eq3.gain_db": -4.0})
    st.close()
    good = path.read_bytes()
    bad = BAD_STATES[kind]
    if kind == "truncated":
        bad = good[: len(good) // 2]
    elif kind == "out of range":
        doc = json.loads(good)
        doc["values"]["eq1.gain_db"] = 1e9
        bad = json.dumps(doc).encode()
    elif kind == "hostile preset":
        doc = json.loads(good)
        doc["active_preset"] = {"../../etc": 1}
        bad = json.dumps(doc).encode()
    elif kind == "modified not a bool":
        doc = json.loads(good)
        doc["modified"] = "no"
        bad = json.dumps(doc).encode()
    path.write_bytes(bad)
    st = StateStore(path, store)
    assert st.get("eq3.gain_db") == -4.0 and not st.safe_mode
    aside = list(tmp_path.glob("state.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == bad  # kept for the user, not deleted
    assert any("moved aside" in m for m in st.boot_report)
    st.close()
    assert json.loads(path.read_bytes())["values"]["eq3.gain_db"] == -4.0  # rewritten from the good copy


def test_both_copies_bad_boots_safe_mode_on_transparent(tmp_path, store):
    path = tmp_path / "state.json"
    path.write_text("{")
    path.with_name("state.json.bak").write_text("")
    st = StateStore(path, store)
    assert st.safe_mode and st.active_preset == "transparent" and st.get("lim.ceiling_dbtp") == -0.5
    assert len(list(tmp_path.glob("state.json*.corrupt-*"))) == 2
    st.close()


def test_forced_safe_mode_leaves_the_saved_state_alone(tmp_path, store):
    path = tmp_path / "state.json"
    st = StateStore(path, store)
    st.set({"eq3.gain_db": -4.0})
    st.close()
    saved = path.read_bytes()
    st = StateStore(path, store, safe_mode=True)
    assert st.safe_mode and st.get("eq3.gain_db") == 0.0
    time.sleep(0.5)
    assert path.read_bytes() == saved  # booting safe writes nothing
    st.set({"eq1.gain_db": 1.0})
    st.close()
    assert path.with_name("state.json.before-safe-mode").read_bytes() == saved
    assert json.loads(path.read_bytes())["values"]["eq1.gain_db"] == 1.0


def test_no_transparent_preset_still_boots_on_schema_defaults(tmp_path):
    st = StateStore(tmp_path / "state.json", PresetStore(tmp_path / "u", tmp_path / "nofactory"), autosave=False)
    assert st.values == schema.defaults() and st.active_preset is None


def test_state_from_a_newer_firmware_keeps_its_unknown_values(tmp_path, store):
    path = tmp_path / "state.json"
    doc = {"format": "masterbox-state", "schema_version": schema.SCHEMA_VERSION + 1, "active_preset": "x",
           "modified": True, "values": {**schema.defaults(), "eq1.gain_db": 2.0, "sat.drive_db": 4.0}}
    path.write_text(json.dumps(doc))
    st = StateStore(path, store)
    assert st.get("eq1.gain_db") == 2.0 and not st.safe_mode and "sat.drive_db" not in st.values
    st.set({"eq2.gain_db": 1.0})
    st.close()
    back = json.loads(path.read_text())
    assert back["values"]["sat.drive_db"] == 4.0 and back["values"]["eq2.gain_db"] == 1.0
    assert back["schema_version"] == schema.SCHEMA_VERSION + 1


def test_state_from_version_1_loads_with_the_tone_control_flat(tmp_path, store):
    values = {k: v for k, v in {**schema.defaults(), "eq2.gain_db": 1.5}.items() if not k.startswith("eq.")}
    doc = {"format": "masterbox-state", "schema_version": 1, "active_preset": "loud", "modified": True,
           "values": values}
    path = tmp_path / "state.json"
    path.write_text(json.dumps(doc))
    st = StateStore(path, store)
    assert not st.safe_mode and st.active_preset == "loud"
    assert st.get("eq.tone_db") == 0.0 and st.get("eq2.gain_db") == 1.5
    st.set({"eq.tone_db": -2.0})
    st.close()
    back = json.loads(path.read_text())
    assert back["schema_version"] == schema.SCHEMA_VERSION and back["values"]["eq.tone_db"] == -2.0
