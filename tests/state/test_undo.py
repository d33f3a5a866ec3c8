"""Undo and redo of the box's settings (firmware/undo.py through StateStore): what one step is, what
comes back, who is told."""

from __future__ import annotations

import json

import pytest

from dsp import schema
from firmware.presets import PresetStore
from firmware.state import StateStore
from firmware.undo import COALESCE_S, DEPTH


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def store(tmp_path):
    factory = tmp_path / "factory"
    factory.mkdir()
    for name, over in (("transparent", {}), ("loud", {"out.drive_db": 6.0, "st.width": 150.0})):
        params = schema.defaults() | over
        (factory / f"{name}.json").write_text(json.dumps({"format": "masterbox-preset", "schema_version": 2,
                                                          "name": name, "params": params}))
    presets = PresetStore(tmp_path / "presets", factory_dir=factory)
    s = StateStore(tmp_path / "state.json", presets=presets, autosave=False)
    s.recall("transparent")
    clock = Clock()
    s.history.clock = clock
    s.history._undo.clear()
    seen = []
    s.subscribe(lambda changes, source: seen.append((dict(changes), source)))
    yield s, clock, seen
    s.close()


def test_a_drag_is_one_step_and_undo_brings_everything_back(store):
    s, clock, seen = store
    assert not s.snapshot()["can_undo"]
    for v in (1.0, 2.0, 3.5, 5.0):                 # a slider dragged: four sets 0.3 s apart
        s.set({"in.trim_db": v}, "web")
        clock.t += 0.3
    assert s.get("in.trim_db") == 5.0 and s.modified
    seen.clear()
    assert s.undo() == {"in.trim_db": 0.0}
    assert s.get("in.trim_db") == 0.0 and s.active_preset == "transparent" and not s.modified
    assert seen == [({"in.trim_db": 0.0}, "undo")]        # the engine is told, like any change
    assert not s.snapshot()["can_undo"] and s.snapshot()["can_redo"]
    assert s.undo() is None
    assert s.redo() == {"in.trim_db": 5.0}
    assert s.modified and s.snapshot()["can_undo"] and not s.snapshot()["can_redo"]


def test_what_makes_a_new_step(store):
    s, clock, _ = store
    s.set({"in.trim_db": 1.0}, "web")
    clock.t += COALESCE_S + 0.1                      # a pause: a new move
    s.set({"in.trim_db": 2.0}, "web")
    clock.t += 0.1
    s.set({"st.width": 120.0}, "web")                # another control
    clock.t += 0.1
    s.set({"st.width": 130.0}, "panel")              # the same control from another place
    s.recall("loud")                                 # a recall
    assert s.undo() is not None and s.active_preset == "transparent" and s.get("st.width") == 130.0
    assert s.undo() == {"st.width": 120.0}
    assert s.undo() == {"st.width": 100.0}
    assert s.undo() == {"in.trim_db": 1.0}
    assert s.undo() == {"in.trim_db": 0.0}
    assert s.undo() is None


def test_a_new_change_drops_the_redo_and_the_depth_is_bounded(store):
    s, clock, _ = store
    s.set({"in.trim_db": 1.0}, "web")
    s.undo()
    s.set({"st.width": 80.0}, "web")
    assert s.redo() is None and s.get("in.trim_db") == 0.0
    for k in range(DEPTH + 20):
        clock.t += COALESCE_S + 0.1
        s.set({"in.trim_db": float(k % 40 - 20)}, "web")
    undone = 0
    while s.undo() is not None:
        undone += 1
    assert undone == DEPTH


def test_undo_of_a_recall_restores_the_edited_values_and_a_deleted_preset_is_not_named(store, tmp_path):
    s, clock, _ = store
    s.set({"eq1.gain_db": 2.0}, "web")               # transparent, modified
    s.recall("loud")
    assert s.undo() == {"eq1.gain_db": 2.0, "out.drive_db": 0.0, "st.width": 100.0}
    assert (s.active_preset, s.modified) == ("transparent", True)
    s.redo()
    assert (s.active_preset, s.modified) == ("loud", False)
    # undo into a state whose preset has since been deleted: the values come back, unnamed
    s.presets.save("mine", s.values)
    s.recall("mine")
    clock.t += 5
    s.set({"in.trim_db": -3.0}, "web")
    s.presets.delete("mine")
    s.undo()
    assert s.get("in.trim_db") == s.presets.get("loud").params["in.trim_db"]
    assert s.active_preset is None and s.modified

