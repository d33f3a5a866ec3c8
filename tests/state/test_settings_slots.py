"""Settings slots 1 and 2 (firmware/settings_slots.py through StateStore): what a switch plays,
what each slot keeps, what survives a restart or a damaged file, undo, and that a switch in the
middle of a tone is click-free through the real chain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dsp import schema
from dsp.chain import Chain
from firmware.presets import PresetStore
from firmware.state import StateStore
from tests.signals import run_chain

FACTORY = Path(schema.__file__).parent / "presets"


def _presets(tmp_path) -> PresetStore:
    return PresetStore(tmp_path / "presets", factory_dir=FACTORY)


@pytest.fixture
def store(tmp_path):
    s = StateStore(tmp_path / "state.json", presets=_presets(tmp_path), autosave=False)
    s.recall("streaming")
    seen = []
    s.subscribe(lambda changes, source: seen.append((dict(changes), source)))
    yield s, seen
    s.close()


def test_the_first_switch_copies_then_each_slot_keeps_its_own_settings(store):
    s, seen = store
    slots = s.snapshot()["slots"]
    assert slots == {"current": 1, "other_empty": True, "other_preset": None, "other_modified": False, "differs": [],
                     "other_values": {}}
    assert s.select_slot(2) == {}                           # slot 2 starts as a copy of slot 1
    assert s.snapshot()["slots"]["current"] == 2 and not s.snapshot()["slots"]["other_empty"]
    s.set({"out.drive_db": 4.0, "eq2.gain_db": -1.5}, "web")
    one = schema.validate(json.loads((FACTORY / "streaming.json").read_text())["params"])
    assert s.snapshot()["slots"]["differs"] == ["eq2.gain_db", "out.drive_db"]     # in schema order
    back = {"eq2.gain_db": one["eq2.gain_db"], "out.drive_db": one["out.drive_db"]}
    assert s.snapshot()["slots"]["other_values"] == back
    seen.clear()
    assert s.select_slot(1) == back
    assert seen == [(back, "slots")]
    assert s.values == one and s.active_preset == "streaming" and not s.modified
    snap = s.snapshot()["slots"]
    assert snap["current"] == 1 and snap["other_preset"] == "streaming" and snap["other_modified"]
    assert s.select_slot(1) == {}                           # already played: nothing happens
    assert s.select_slot(2) == {"eq2.gain_db": -1.5, "out.drive_db": 4.0}
    assert s.modified and s.active_preset == "streaming"


def test_a_recall_goes_to_the_slot_played_and_monitoring_stays_as_it_is(store):
    s, _ = store
    s.select_slot(2)
    s.recall("loud")
    s.set({"ab.level_match": False}, "web")                  # how one listens, not a version
    s.select_slot(1)
    assert s.active_preset == "streaming" and s.get("ab.level_match") is False
    assert s.snapshot()["slots"]["other_preset"] == "loud"
    assert "ab.level_match" not in s.snapshot()["slots"]["differs"]
    s.select_slot(2)
    assert s.active_preset == "loud" and s.modified and s.get("ab.level_match") is False
    with pytest.raises(ValueError, match="choose 1 or 2"):
        s.select_slot(3)
    with pytest.raises(ValueError, match="choose 1 or 2"):
        s.select_slot(True)


def test_copy_puts_what_is_played_over_the_other_slot(store):
    s, seen = store
    s.select_slot(2)
    s.recall("loud")
    s.select_slot(1)
    assert s.snapshot()["slots"]["differs"]
    seen.clear()
    s.copy_to_other_slot()
    assert seen == [({}, "slots")]                          # pages are told; nothing heard changes
    snap = s.snapshot()["slots"]
    assert snap["differs"] == [] and snap["other_preset"] == "streaming"
    assert s.select_slot(2) == {} and s.active_preset == "streaming"


def test_switches_and_copies_are_undo_steps(store):
    s, _ = store
    s.set({"st.width": 130.0}, "web")
    s.select_slot(2)
    s.set({"st.width": 80.0}, "web")
    s.select_slot(1)
    assert s.get("st.width") == 130.0
    assert s.undo() == {"st.width": 80.0}                   # back in slot 2 as it was
    assert s.snapshot()["slots"]["current"] == 2
    assert s.undo() == {"st.width": 130.0}                  # the width move in slot 2 taken back
    assert s.snapshot()["slots"]["current"] == 2 and s.snapshot()["slots"]["differs"] == []
    assert s.undo() == {}                                   # the first switch: slot 1, the other empty
    assert s.snapshot()["slots"] == {"current": 1, "other_empty": True, "other_preset": None,
                                     "other_modified": False, "differs": [], "other_values": {}}
    assert s.redo() == {} and s.redo() == {"st.width": 80.0} and s.redo() == {"st.width": 130.0}
    assert s.snapshot()["slots"]["current"] == 1
    s.copy_to_other_slot()
    assert s.snapshot()["slots"]["differs"] == []
    s.undo()
    assert s.snapshot()["slots"]["differs"] == ["st.width"]


def test_both_slots_survive_a_restart(tmp_path):
    s = StateStore(tmp_path / "state.json", presets=_presets(tmp_path), autosave=False)
    s.recall("loud")
    s.select_slot(2)
    s.recall("broadcast-r128")
    s.set({"eq3.gain_db": 2.0}, "web")
    s.close()
    again = StateStore(tmp_path / "state.json", presets=_presets(tmp_path), autosave=False)
    assert again.boot_report == [] and not again.safe_mode
    assert again.active_preset == "broadcast-r128" and again.modified and again.get("eq3.gain_db") == 2.0
    assert again.snapshot()["slots"]["current"] == 2 and again.snapshot()["slots"]["other_preset"] == "loud"
    loud = schema.validate(json.loads((FACTORY / "loud.json").read_text())["params"])
    again.select_slot(1)
    assert again.values == loud | {"ab.level_match": again.get("ab.level_match")}
    assert again.active_preset == "loud" and not again.modified
    again.close()


@pytest.mark.parametrize("slots, why", [
    ({"current": 3, "other": None}, "current slot 3 is not 1 or 2"),
    ({"current": 2, "other": {"values": {"out.drive_db": 99.0}}}, "out.drive_db"),
    ({"current": 2, "other": {"values": {}, "active_preset": 7}}, "preset name is not text"),
    ({"current": 1, "other": "loud"}, "no values"),
    ("slot 2", "not an object"),
])
def test_a_damaged_slots_section_empties_the_other_slot_and_keeps_the_state(tmp_path, slots, why):
    """The settings played are what matters at boot: a bad ``slots`` section loses only itself, says
    so in the boot report, and the file is not moved aside."""
    path = tmp_path / "state.json"
    values = schema.defaults() | {"st.width": 120.0}
    path.write_text(json.dumps({"format": "masterbox-state", "schema_version": schema.SCHEMA_VERSION,
                                "active_preset": None, "modified": True, "values": values, "slots": slots}))
    s = StateStore(path, presets=_presets(tmp_path), autosave=False)
    assert not s.safe_mode and s.get("st.width") == 120.0 and path.exists()
    assert len(s.boot_report) == 1 and why in s.boot_report[0] and "it is empty" in s.boot_report[0]
    assert s.snapshot()["slots"]["other_empty"]
    s.close()


def test_an_old_state_file_s_other_slot_is_migrated_like_a_preset(tmp_path):
    """Schema 1 had no tone control: slot 2 written then comes back with it at rest, its bands as they were."""
    path = tmp_path / "state.json"
    old = {k: v for k, v in schema.defaults().items() if k not in ("eq.tone_db", "eq.tone_freq")}
    path.write_text(json.dumps({"format": "masterbox-state", "schema_version": 1, "active_preset": None,
                                "modified": False, "values": old,
                                "slots": {"current": 1, "other": {"active_preset": "mine", "modified": True,
                                                                  "values": old | {"eq4.gain_db": 3.0}}}}))
    s = StateStore(path, presets=_presets(tmp_path), autosave=False)
    assert s.boot_report == []
    assert s.snapshot()["slots"]["differs"] == ["eq4.gain_db"]
    s.select_slot(2)
    assert s.get("eq.tone_db") == 0.0 and s.get("eq4.gain_db") == 3.0
    assert s.active_preset is None and s.modified          # "mine" is no preset here: the values stay
    s.close()


def test_renaming_or_deleting_a_preset_follows_the_other_slot(tmp_path):
    presets = _presets(tmp_path)
    presets.save("Mine", schema.defaults() | {"st.width": 140.0})
    s = StateStore(tmp_path / "state.json", presets=presets, autosave=False)
    s.recall("Mine")
    s.select_slot(2)
    s.recall("loud")
    presets.rename("Mine", "Ours")
    s.preset_renamed("Mine", "Ours")
    assert s.snapshot()["slots"]["other_preset"] == "Ours" and s.active_preset == "loud"
    presets.delete("Ours")
    s.preset_deleted("Ours")
    assert s.snapshot()["slots"]["other_modified"]
    s.select_slot(1)
    assert s.get("st.width") == 140.0 and s.modified
    s.close()


def _max_second_difference(y):
    return np.abs(np.diff(y, n=2, axis=0)).max()


def test_a_switch_in_the_middle_of_a_tone_is_click_free(tmp_path):
    """Slot 1 'loud', slot 2 'vinyl-premaster' with an EQ band and multiband changed: what the real
    switch tells the engine, applied to the chain half-way through a 440 Hz sine, changes the output
    without a step (the second difference stays within twice its steady-state size)."""
    s = StateStore(tmp_path / "state.json", presets=_presets(tmp_path), autosave=False)
    s.recall("loud")
    s.select_slot(2)
    s.recall("vinyl-premaster")
    s.set({"eq2.on": True, "eq2.gain_db": 9.0, "eq2.freq": 500.0, "mb.on": True, "st.width": 60.0}, "web")
    s.select_slot(1)
    rate = 48000
    t = np.arange(rate) / rate
    x = np.ascontiguousarray(np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 440 * t + 0.5)], 1))
    chain = Chain(rate)
    chain.set_values(s.values)
    half = rate // 2
    first = run_chain(chain, x[:half])
    changes = s.select_slot(2)
    assert len(changes) >= 10                               # a whole other version of the settings
    chain.set_values(changes)
    y = np.vstack([first, run_chain(chain, x[half:])])
    steady = max(_max_second_difference(y[half - 4000:half - 100]), _max_second_difference(y[-4000:]))
    assert _max_second_difference(y[half - 100:half + 6000]) <= 2.0 * steady + 1e-6
    s.close()
