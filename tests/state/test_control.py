"""Control with a stand-in engine: changes pushed, engine restarts detected, learning converges."""

from __future__ import annotations

import json
import math
import threading
import time

import numpy as np
import pytest

from dsp import schema
from firmware import presets as pr
from firmware.captures import CaptureIndex
from firmware.control import Control, EngineUnavailableFallback
from firmware.learn import Learner
from firmware.presets import PresetStore
from firmware.state import StateStore


class FakeEngine:
    """Records calls; ``down`` makes every call fail like an engine that is not running."""

    def __init__(self):
        self.calls = []
        self.params = {}
        self.down = False
        self.start_id = 1
        self.uptime = 0.0

    def _call(self, name, *a, **kw):
        if self.down:
            raise EngineUnavailableFallback("not running")
        self.calls.append((name, a, kw))
        return {"ok": True}

    def set_params(self, values):
        r = self._call("set_params", values)
        self.params.update(values)
        return r

    def bypass(self, on, level_match=None):
        return self._call("bypass", on, level_match=level_match)

    def monitor(self, mode):
        return self._call("monitor", mode)

    def preview(self, service):
        return self._call("preview", service)

    def compare(self, on):
        return self._call("compare", on)

    def capture_start(self, **kw):
        return self._call("capture_start", **kw)

    def capture_stop(self):
        return self._call("capture_stop")

    def meters_reset(self):
        return self._call("meters_reset")

    def status(self):
        if self.down:
            raise EngineUnavailableFallback("not running")
        if self.start_id is None:  # an engine that only reports its uptime
            return {"ok": True, "uptime_s": self.uptime}
        return {"ok": True, "start_id": self.start_id, "pid": 1234}


@pytest.fixture
def control(tmp_path):
    factory = tmp_path / "factory"
    factory.mkdir()
    for name, params in (("transparent", schema.defaults()), ("loud", {**schema.defaults(), "out.drive_db": 6.0})):
        (factory / f"{name}.json").write_text(json.dumps({"format": pr.FORMAT, "schema_version": 1,
                                                          "name": name, "params": params}))
    presets = PresetStore(tmp_path / "user", factory)
    state = StateStore(tmp_path / "state.json", presets)
    eng = FakeEngine()
    c = Control(state=state, presets=presets, captures=CaptureIndex(tmp_path / "captures"), engine=eng,
                meters=None, config={"storage": {"capture_format": "FLOAT", "capture_max_minutes": 2}}, watch=False)
    yield c, eng
    c.close()


def test_changes_are_pushed_and_engine_restart_gets_the_whole_state(control):
    c, eng = control
    assert c.check_engine()  # first sight of the engine: whole state pushed
    assert eng.params == schema.defaults()
    c.set({"eq1.gain_db": 2.0}, source="web")
    assert eng.calls[-1] == ("set_params", ({"eq1.gain_db": 2.0},), {})
    assert not c.check_engine()  # same engine: nothing to do
    eng.down = True
    c.set({"eq1.gain_db": 3.0})  # engine down: the change is kept in the state, no error
    assert c.bypass(True)["ok"] is False
    assert c.monitor("mono")["ok"] is False
    assert c.set_preview("spotify")["ok"] is False
    eng.down, eng.start_id, eng.params = False, 2, {}
    assert c.check_engine()
    assert eng.params["eq1.gain_db"] == 3.0 and len(eng.params) == schema.COUNT
    assert ("bypass", (True,), {"level_match": True}) in eng.calls[-3:]
    assert eng.calls[-2] == ("monitor", ("mono",), {})      # the listening mode asked while it was down
    assert eng.calls[-1] == ("preview", ("spotify",), {})   # and the streaming preview
    assert c.status()["monitor"] == "mono" and c.status()["preview"] == "spotify"
    with pytest.raises(ValueError, match="one of stereo, mono, side, left, right"):
        c.monitor("quad")
    with pytest.raises(ValueError, match="one of off, spotify, youtube, apple_music, tidal, amazon_music"):
        c.set_preview("napster")
    assert c.preview == "spotify"


def test_settings_1_and_2_are_compared_at_equal_loudness_until_an_edit(control):
    c, eng = control
    names = lambda: [k[0] for k in eng.calls]   # noqa: E731
    c.state.select_slot(2, "web")          # the first switch: the copy is heard, matched
    assert names()[-1] == "compare" and eng.calls[-1][1] == (True,)
    c.set({"out.drive_db": 4.0}, source="web")   # an edit: heard as it is
    assert eng.calls[-2:] == [("compare", (False,), {}), ("set_params", ({"out.drive_db": 4.0},), {})]
    c.set({"out.drive_db": 5.0}, source="web")
    assert names()[-1] == "set_params" and "compare" not in names()[-2:]
    c.state.select_slot(1, "web")          # the engine hears of the switch before the other settings
    assert eng.calls[-2:] == [("compare", (True,), {}), ("set_params", ({"out.drive_db": 0.0},), {})]
    c.set({"ab.level_match": False}, source="web")   # monitoring is not an edit of the settings
    assert names()[-1] == "set_params" and names()[-2] == "set_params"
    c.state.undo()                          # back to settings 2 by undo is a switch too
    c.state.undo()
    assert c.state.slot == 2 and ("compare", (True,), {}) in eng.calls[-3:]
    c.capture_start()                       # a recording is of the master as it is
    assert [k[:2] for k in eng.calls[-2:]] == [("compare", (False,)), ("capture_start", ())]
    c.state.select_slot(1, "web")
    c.learner.start = lambda seconds=None: {"state": "running"}   # the learner itself: tests below
    c.learn_start()                          # learning measures the output as it is
    assert eng.calls[-1] == ("compare", (False,), {})


def test_engine_restart_seen_by_uptime_going_back(control):
    c, eng = control
    eng.start_id, eng.uptime = None, 50.0
    assert c.check_engine()
    eng.uptime = 51.0
    assert not c.check_engine()
    eng.params, eng.uptime = {}, 0.5  # restarted
    assert c.check_engine() and len(eng.params) == schema.COUNT


def test_recall_save_rename_delete_through_control(control):
    c, eng = control
    c.recall("loud")
    assert eng.params.get("out.drive_db") == 6.0 and c.state.active_preset == "loud" and not c.state.modified
    c.set({"eq2.gain_db": -2.0})
    assert c.state.modified
    with pytest.raises(pr.PresetError, match="factory"):
        c.save_preset()
    p = c.save_preset_as("My Loud")
    assert c.state.active_preset == "My Loud" and not c.state.modified
    assert c.presets.get("my loud").params["eq2.gain_db"] == -2.0
    c.rename_preset("My Loud", "Mine")
    assert c.state.active_preset == "Mine"
    c.delete_preset("Mine")
    assert c.state.modified and p.name not in c.presets.names()


def test_capture_start_uses_config_and_active_preset(control):
    c, eng = control
    c.recall("loud")
    c.capture_start()
    assert eng.calls[-1] == ("capture_start", (), {"tap": "output", "fmt": "FLOAT", "max_seconds": 120.0,
                                                   "preset": "loud", "modified": False})
    c.capture_start(tap="both", fmt="PCM_24", max_seconds=5)
    assert eng.calls[-1][2]["tap"] == "both" and eng.calls[-1][2]["max_seconds"] == 5
    c.set({"out.drive_db": 1.0})            # changed since the recall: the capture's chunk says "loud (modified)"
    c.capture_start()
    assert (eng.calls[-1][2]["preset"], eng.calls[-1][2]["modified"]) == ("loud", True)
    st = c.status()
    assert st["state"]["active_preset"] == "loud" and st["learn"]["state"] == "idle"


class ChainModel:
    """Output loudness of a limiter-driven chain: 1 dB per dB until -10 LUFS, then compressed."""

    def __init__(self, input_lufs=-24.0, noise=0.3):
        self.input_lufs, self.noise = input_lufs, noise
        self.drive = 0.0
        self.t_reset = time.monotonic()
        self.resets = 0

    def loudness(self):
        raw = self.input_lufs + self.drive
        return raw if raw < -10 else -10 + 0.35 * (raw + 10)

    def read(self):
        age = time.monotonic() - self.t_reset
        wobble = self.noise * math.sin(age * 7.0) / (1 + age)
        return {"out_integrated_lufs": self.loudness() + wobble, "out_true_peak_dbtp": -1.0}

    def reset(self):
        self.t_reset = time.monotonic()
        self.resets += 1


@pytest.mark.parametrize("target, input_lufs", [(-14.0, -24.0), (-9.0, -20.0), (-23.0, -12.0)])
def test_learner_converges_on_a_limiting_chain_model(target, input_lufs):
    model = ChainModel(input_lufs)
    values = {"target.lufs": target, "out.drive_db": 0.0}

    def set_drive(db):
        values["out.drive_db"] = db
        model.drive = db

    ln = Learner(model.read, model.reset, values.__getitem__, set_drive, window_s=0.25)
    ln.start(seconds=2.0)
    st = ln.wait(4.0)
    assert st["state"] == "done", st
    assert abs(model.loudness() - target) <= 0.5, (model.loudness(), st)
    assert st["rounds"] <= 8


class VaryingProgramme(ChainModel):
    """Music whose loudness swings +-4 LU between passages; the meters see the window's mean."""

    def __init__(self, base=-20.0):
        super().__init__(base, noise=0.0)
        self.base = base

    def passage(self, t):
        return self.base + 4.0 * math.sin(t * 2.3)

    def out_for(self, inp):
        raw = inp + self.drive
        return raw if raw < -10 else -10 + 0.35 * (raw + 10)

    def read(self):
        t1 = time.monotonic()
        ts = np.linspace(self.t_reset, t1, 50)
        e_in = np.mean([10 ** (self.passage(t) / 10) for t in ts])
        e_out = np.mean([10 ** (self.out_for(self.passage(t)) / 10) for t in ts])
        return {"in_integrated_lufs": 10 * np.log10(e_in), "out_integrated_lufs": 10 * np.log10(e_out)}

    def long_run_output(self):
        ts = np.linspace(0, 2 * np.pi / 2.3, 400)
        return 10 * np.log10(np.mean([10 ** (self.out_for(self.base + 4.0 * np.sin(t * 2.3)) / 10) for t in ts]))


def test_learner_separates_programme_loudness_from_chain_gain():
    model = VaryingProgramme()
    values = {"target.lufs": -12.0, "out.drive_db": 0.0}

    def set_drive(db):
        values["out.drive_db"] = db
        model.drive = db

    ln = Learner(model.read, model.reset, values.__getitem__, set_drive, window_s=0.4)
    ln.start(seconds=4.0)
    st = ln.wait(6.0)
    assert st["state"] == "done", st
    assert abs(model.long_run_output() - (-12.0)) <= 1.0, (model.long_run_output(), st)


def test_learner_reports_an_unreachable_target_and_a_missing_engine():
    model = ChainModel(-50.0, noise=0.0)
    values = {"target.lufs": -5.0, "out.drive_db": 0.0}
    ln = Learner(model.read, model.reset, values.__getitem__,
                 lambda db: (values.__setitem__("out.drive_db", db), setattr(model, "drive", db)), window_s=0.1)
    st = ln.start()
    st = ln.wait(5.0)
    assert st["state"] == "failed" and "limit" in st["reason"]
    gone = Learner(lambda: None, lambda: None, values.__getitem__, lambda db: None)
    import firmware.learn as lm
    old = lm.NO_METERS_TIMEOUT_S
    lm.NO_METERS_TIMEOUT_S = 0.3
    try:
        gone.start()
        assert gone.wait(3.0)["state"] == "failed"
    finally:
        lm.NO_METERS_TIMEOUT_S = old


def test_learner_stop_from_another_thread():
    model = ChainModel(-14.0, noise=0.0)
    values = {"target.lufs": -14.0, "out.drive_db": 0.0}
    ln = Learner(model.read, model.reset, values.__getitem__, lambda db: None, window_s=0.1)
    ln.start()
    threading.Timer(0.3, ln.stop).start()
    st = ln.wait(3.0)
    assert st["state"] in ("stopped",) and not ln.running


def test_control_side_modules_do_not_import_numba():
    import subprocess
    import sys

    code = ("import sys, firmware.control, firmware.state, firmware.presets, firmware.captures, firmware.learn, "
            "firmware.commands.presets, firmware.commands.captures; print('numba' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


def test_control_finalises_captures_a_dead_engine_left_unfinished(tmp_path):
    import json as _json

    from firmware import capture_writer as cw

    d = tmp_path / "captures"
    d.mkdir()
    wav = d / "2026-01-01_000000_x_output.wav"
    with open(wav, "wb") as f:
        f.write(cw.wav_header(48000, 2, "PCM_24", 0))
        f.write(bytes(6 * 1000))  # 1000 frames the header never covered
    (d / ".2026-01-01_000000_x.recording").write_text(_json.dumps({"pid": 2 ** 22 + 12345, "files": [wav.name]}))
    c = Control(state=StateStore(tmp_path / "s.json", PresetStore(tmp_path / "u", tmp_path / "f")),
                captures=CaptureIndex(d), engine=FakeEngine(), meters=None, watch=True)
    try:
        t0 = time.monotonic()
        while list(d.glob(".*.recording")) and time.monotonic() - t0 < 5:
            time.sleep(0.05)
        import soundfile as sf
        assert sf.info(wav).frames == 1000
    finally:
        c.close()


def test_a_capture_cut_off_by_an_engine_crash_is_finished_when_the_new_engine_appears(control, tmp_path):
    """An engine killed mid-capture (kill -9, then restarted by the supervisor) leaves its marker behind.
    The capture must not stay "recording" (delete, master and download refused) until control restarts:
    a marker whose process is gone is not believed, and control finalises it on seeing the new engine."""
    import subprocess
    import sys

    import soundfile as sf

    from firmware import capture_writer as cw

    c, eng = control
    d = c.captures.directory
    d.mkdir()
    wav = d / "2026-01-01_000000_x_output.wav"
    with open(wav, "wb") as f:
        f.write(cw.wav_header(48000, 2, "PCM_24", 0))
        f.write(bytes(6 * 1000))  # 1000 frames the header never covered: the writer died first
    recorder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    marker = d / f".2026-01-01_000000_x{cw.MARKER_SUFFIX}"
    marker.write_text(json.dumps({"pid": recorder.pid, "files": [wav.name]}))
    try:
        assert c.check_engine()
        assert c.captures.is_recording() and c.captures.get(wav.stem)["recording"]
        assert marker.exists()                          # a living recorder's files are left alone
    finally:
        recorder.kill()
        recorder.wait()
    assert not c.captures.is_recording()                # believed no more, at once
    assert c.captures.get(wav.stem)["analysis"] == "pending"
    eng.start_id = 2                                    # the supervisor's new engine
    assert c.check_engine()
    assert not marker.exists()
    assert sf.info(wav).frames == 1000                  # the header now covers what was written
