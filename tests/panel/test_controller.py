"""The panel driving the real state (StateStore, PresetStore, Control) on a SimulatedPanel:
knobs into the state within 100 ms, recalls back onto the knobs (re-arming pick-up), the
buttons' short and long presses, safe-mode boot, and a panel that survives a failing web UI."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from dsp import schema
from firmware.control import Control
from firmware.panel_controller import SLOT_FLASH_S, KnobBinding, PanelController, safe_mode_held
from firmware.presets import PresetStore
from firmware.state import StateStore
from hw.panel.simulated import SimulatedPanel
from hw.panel.spec import DEFAULT_PANEL, ButtonSpec, KnobSpec


class FakeEngine:
    """The engine's control channel, answering like the real client; records the calls."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        def call(*a, **kw):
            self.calls.append((name, a, kw))
            return {"ok": True}
        return call


class FakeMeters:
    def __init__(self):
        self.reading = {"state": "running", "out_short_term_lufs": -14.5, "out_momentary_lufs": -14.0,
                        "gr_low_db": 0.0, "gr_mid_db": 0.0, "gr_high_db": 0.0, "gr_limiter_db": 1.5,
                        "out_true_peak_dbtp": -1.5, "capturing": False}

    def read(self):
        return dict(self.reading) if self.reading is not None else None


def by_hand(pc):
    """Stop the controller's own 40 Hz loop so the test's ``loop.tick()`` is the only writer of the
    status LED and bars: otherwise a background tick that read the meters just before the test
    changed them can land just after the test's tick and show the old pattern (seen once in a
    full CI run)."""
    pc.loop.stop()
    return pc


def preset_doc(name, **changes):
    values = schema.defaults()
    values.update(changes)
    return json.dumps({"format": "masterbox-preset", "schema_version": 1, "name": name, "description": "",
                       "params": values})


# short hold times so the tests do not wait 5 s (the defaults are checked in test_config)
SPEC = dataclasses.replace(
    DEFAULT_PANEL,
    knobs=(KnobSpec("input", "encoder", param="in.trim_db", pins=(20, 21, 19), detents=48),
           KnobSpec("dither", "encoder", param="dither.mode", pins=(2, 3)),) + DEFAULT_PANEL.knobs[1:],
    buttons=tuple(ButtonSpec(b.role, b.pin, hold=0.3) for b in DEFAULT_PANEL.buttons),
)


@pytest.fixture
def box(tmp_path):
    factory = tmp_path / "factory"
    factory.mkdir()
    (factory / "transparent.json").write_text(preset_doc("transparent"))
    (factory / "loud.json").write_text(preset_doc("loud", **{"in.trim_db": 6.0, "st.width": 150.0,
                                                             "target.lufs": -9.0}))
    presets = PresetStore(user_dir=tmp_path / "presets", factory_dir=factory)
    presets.save("mine", dict(schema.defaults(), **{"out.drive_db": 3.0}))
    made = []

    def make(panel=None, safe_mode=False, ran=None, run=None):
        panel = panel or SimulatedPanel(SPEC)
        state = StateStore(tmp_path / "state.json", presets=presets, safe_mode=safe_mode)
        control = Control(state=state, presets=presets, engine=FakeEngine(), meters=FakeMeters(),
                          config={"system": {"shutdown_command": "echo bye now"}}, watch=False)
        pc = PanelController(control, panel=panel, config=control.config,
                             run=ran.append if ran is not None else run).start()
        made.append((pc, control, panel))
        return pc, control, panel

    yield make
    for pc, control, panel in made:
        pc.close()
        control.close()
        panel.close()


def wait_for(predicate, timeout=2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.002)
    return predicate()


def test_encoder_turn_reaches_the_state_within_100ms(box):
    pc, control, panel = box()
    control.state.set({"in.trim_db": 0.0}, "test")
    t0 = time.monotonic()
    panel.turn("input", 3)                               # 3 of 48 detents over -24..24 dB: +3 dB
    assert wait_for(lambda: control.state.get("in.trim_db") == pytest.approx(3.0))
    assert time.monotonic() - t0 < 0.1


def test_pot_turn_reaches_the_state_within_100ms_through_the_panel_loop(box):
    pc, control, panel = box()
    control.state.set({"st.width": 100.0}, "test")        # the pot must pick up at 0.5 first
    chip, ch = panel.adc_chip, SPEC.knob("width").channel
    chip.channels[ch] = 512
    assert wait_for(lambda: panel.knobs["width"].picked_up)
    t0 = time.monotonic()
    chip.channels[ch] = 767                              # the loop (not the test) reads the ADC
    # WIDTH has a centre detent (100 % over 2 x 2.5 % of the travel): above it, a straight line to 200 %
    d = SPEC.knob("width").centre_detent
    assert d == 0.025
    want = 100 + (767 / 1023 - 0.5 - d) / (0.5 - d) * 100
    assert wait_for(lambda: control.state.get("st.width") == pytest.approx(want))
    assert time.monotonic() - t0 < 0.1


def test_recall_moves_the_knobs_and_rearms_pickup(box):
    pc, control, panel = box()
    panel.set_pot("width", 0.5)
    pc.flush()
    assert panel.knobs["width"].picked_up
    control.recall("loud")                               # from the web UI, say
    assert panel.knobs["input"].position == pytest.approx(30 / 48)    # +6 dB
    assert panel.knobs["width"].position == pytest.approx(0.75)
    assert not panel.knobs["width"].picked_up            # knob at 0.5, parameter at 0.75
    panel.set_pot("width", 0.6)
    pc.flush()
    assert control.state.get("st.width") == 150.0        # not picked up yet: nothing moves
    panel.set_pot("width", 0.8)                           # passes 0.75: picked up
    pc.flush()
    assert control.state.get("st.width") == pytest.approx(panel.knobs["width"].physical * 200)


def test_glue_macro_moves_its_parameters(box):
    pc, control, panel = box()
    b = pc.bindings["glue"]
    control.state.set(schema.MACROS["glue"].values(0.0), "test")
    panel.set_pot("glue", 0.0)
    panel.set_pot("glue", 0.5)
    pc.flush()
    assert control.state.get("mb.on") is True
    assert control.state.get("mb.mid.threshold_db") == pytest.approx(-14.0, abs=0.1)
    assert b.position(control.state.values) == pytest.approx(0.5, abs=0.005)


def test_tone_knob_tilts_and_leaves_the_eq_bands_alone(box):
    """TONE has a parameter of its own: a preset's six bands stay as they are when it turns."""
    pc, control, panel = box()
    control.state.set({"eq4.on": True, "eq4.type": "bell", "eq4.gain_db": -2.5, "eq.tone_db": 0.0}, "test")
    bands = {k: v for k, v in control.state.values.items() if k[:2] == "eq" and k[2].isdigit()}
    panel.set_pot("tone", 0.5)                            # centre = flat: picked up here
    panel.set_pot("tone", 0.75)
    pc.flush()
    # 0..+6 dB from the edge of the centre detent to the end of the travel
    d = SPEC.knob("tone").centre_detent
    assert control.state.get("eq.tone_db") == pytest.approx((0.25 - d) / (0.5 - d) * 6, abs=0.02)
    assert {k: control.state.get(k) for k in bands} == bands


def test_tone_knob_left_near_the_centre_is_exactly_flat(box):
    """A real pot at its centre reads a few counts either way; the detent makes that exactly 0 dB, so the
    tone stage is skipped (bit for bit) instead of running a fraction of a dB off."""
    pc, control, panel = box()
    control.state.set({"eq.tone_db": 0.0}, "test")
    panel.set_pot("tone", 0.5)                            # picked up at the centre
    panel.set_pot("tone", 0.7)
    pc.flush()
    assert control.state.get("eq.tone_db") > 2.0
    for pos in (0.515, 0.49, 0.505, 0.488, 0.512):        # back to the centre, left a count or ten off it
        panel.set_pot("tone", pos)
    pc.flush()
    assert control.state.get("eq.tone_db") == 0.0        # exactly: not 0.02 dB, not -0.01 dB


def test_also_set_writes_its_values_with_the_knob(box):
    knob = KnobSpec("band4", "pot", param="eq4.gain_db", channel=5, also_set=(("eq4.on", True), ("eq4.type", "tilt")))
    pc, control, panel = box(panel=SimulatedPanel(dataclasses.replace(SPEC, knobs=SPEC.knobs + (knob,))))
    control.state.set({"eq4.gain_db": 0.0}, "test")
    panel.set_pot("band4", 0.5)
    panel.set_pot("band4", 0.75)
    pc.flush()
    assert control.state.get("eq4.type") == "tilt" and control.state.get("eq4.on") is True
    assert control.state.get("eq4.gain_db") == pytest.approx(9.0, abs=0.05)


def test_choice_parameter_on_an_encoder_steps_one_choice_per_detent(box):
    pc, control, panel = box()
    assert control.state.get("dither.mode") == "off"
    panel.turn("dither", 1, interval=0)                   # even fast: no acceleration on choices
    pc.flush()
    assert control.state.get("dither.mode") == "tpdf"
    panel.turn("dither", 5)
    pc.flush()
    assert control.state.get("dither.mode") == "shaped"


def test_preset_buttons_step_through_the_presets(box):
    pc, control, panel = box()
    names = control.presets.names()
    assert names == ["loud", "transparent", "mine"]
    control.recall("transparent")
    panel.click("preset_up")
    pc.flush()
    assert control.state.active_preset == "mine"
    panel.click("preset_up")
    pc.flush()
    assert control.state.active_preset == "loud"         # wraps around
    panel.click("preset_down")
    pc.flush()
    assert control.state.active_preset == "mine"


def test_preset_down_held_switches_settings_1_and_2_and_the_knobs_follow(box):
    """PRESET- held is the box's COMPARE (firmware/settings_slots.py): each hold plays the other slot,
    the engine is told, the knobs move to the slot's values as after a recall, and the status LED
    flashes the slot's number (two flashes for 2) before it shows what it showed before."""
    pc, control, panel = box()
    by_hand(pc)
    control.recall("loud")                                # width 150 %, trim +6 dB
    panel.hold("preset_down")
    pc.flush()
    assert control.state.slot == 2 and control.state.active_preset == "loud"     # 2 starts as a copy
    pc.loop.tick()
    assert panel.snapshot()["status"]["pattern"] == "slot_2"
    led = panel.status_led
    assert [led.lit_at("slot_2", t) for t in (0.1, 0.4, 0.65, 0.9, 1.2)] == [False, True, False, True, False]
    assert [led.lit_at("slot_1", t) for t in (0.1, 0.4, 0.65, 0.9, 1.2)] == [False, True, False, False, False]
    deadline = time.monotonic() + SLOT_FLASH_S + 2
    while pc.status(control.read_meters()) != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    control.recall("transparent")                         # into slot 2
    assert panel.knobs["width"].position == pytest.approx(0.5)
    panel.hold("preset_down")
    pc.flush()
    assert control.state.slot == 1 and control.state.active_preset == "loud"
    assert control.state.get("st.width") == 150.0 and control.state.get("in.trim_db") == 6.0
    assert ("set_params", ({"in.trim_db": 6.0, "st.width": 150.0, "target.lufs": -9.0},), {}) in control.engine.calls
    assert panel.knobs["width"].position == pytest.approx(0.75)
    assert panel.knobs["input"].position == pytest.approx(30 / 48)
    assert control.state.snapshot()["slots"]["other_preset"] == "transparent"
    panel.click("preset_down")                            # a short press still steps the presets
    pc.flush()
    assert control.state.slot == 1 and control.state.active_preset != "loud"


def test_hold_preset_up_saves_into_the_active_user_preset(box):
    pc, control, panel = box()
    control.recall("mine")
    panel.turn("input", 2)
    pc.flush()
    assert control.state.modified
    panel.hold("preset_up")
    pc.flush()
    assert control.presets.get("mine").params["in.trim_db"] == pytest.approx(2.0)
    assert not control.state.modified and control.state.active_preset == "mine"


def test_hold_preset_up_on_a_factory_preset_flashes_error(box):
    pc, control, panel = box()
    control.recall("loud")
    panel.hold("preset_up")
    pc.flush()
    assert "not a user preset" in pc.last_error
    assert pc.status(control.read_meters()) == "error"
    assert control.presets.get("loud").params["in.trim_db"] == 6.0


def test_bypass_short_toggles_and_long_saves_then_shuts_down(box, tmp_path):
    ran = []
    pc, control, panel = box(ran=ran)
    panel.click("bypass")
    pc.flush()
    assert control.bypassed is True
    assert ("bypass", (True,), {"level_match": True}) in control.engine.calls
    panel.click("bypass")
    pc.flush()
    assert control.bypassed is False
    control.state.set({"st.width": 120.0}, "test")
    panel.hold("bypass")
    pc.flush()
    assert ran == [["echo", "bye", "now"]]
    assert json.loads((tmp_path / "state.json").read_text())["values"]["st.width"] == 120.0
    assert pc.status(control.read_meters()) == "off"
    assert control.bypassed is False                     # a long press is not also a short one


def test_learn_and_capture_buttons(box):
    pc, control, panel = box()
    panel.click("capture")
    pc.flush()
    assert control.engine.calls[-1][0] == "capture_start" and pc.capturing
    control.meters.reading["capturing"] = True
    assert pc.status(control.read_meters()) == "capturing"
    panel.click("capture")
    pc.flush()
    assert control.engine.calls[-1][0] == "capture_stop"
    control.meters.reading["capturing"] = False
    panel.click("learn")
    pc.flush()
    assert control.learner.running
    assert pc.status(control.read_meters()) == "learning"
    panel.click("learn")
    pc.flush()
    assert not control.learner.running


def test_learn_held_is_the_mono_check_and_the_status_led_says_so(box):
    pc, control, panel = box()
    by_hand(pc)
    panel.hold("learn")
    pc.flush()
    assert control.monitor_mode == "mono" and control.engine.calls[-1] == ("monitor", ("mono",), {})
    assert not control.learner.running                      # a long press is not also a short one
    control.meters.reading["monitor"] = "mono"              # as the engine publishes it
    pc.loop.tick()
    assert panel.snapshot()["status"]["pattern"] == "monitor"
    panel.hold("learn")
    pc.flush()
    assert control.monitor_mode == "stereo" and control.engine.calls[-1] == ("monitor", ("stereo",), {})
    control.monitor("side")                                 # chosen on the web UI
    panel.hold("learn")
    pc.flush()
    assert control.monitor_mode == "stereo"                 # from any listening mode: back to stereo
    control.meters.reading["monitor"] = "stereo"
    pc.loop.tick()
    assert panel.snapshot()["status"]["pattern"] == "running"
    control.meters.reading["preview"] = "spotify"          # As streamed (web UI): not the master as it is either
    pc.loop.tick()
    assert panel.snapshot()["status"]["pattern"] == "monitor"
    control.meters.reading["preview"] = "off"
    pc.loop.tick()
    assert panel.snapshot()["status"]["pattern"] == "running"


def test_safe_mode_boot_with_preset_down_held(box):
    panel = SimulatedPanel(SPEC)
    panel.press("preset_down")                            # held while the box starts
    held = safe_mode_held(panel)
    assert held
    pc, control, _ = box(panel=panel, safe_mode=held)
    by_hand(pc)
    assert control.state.safe_mode and control.state.active_preset == "transparent"
    pc.loop.tick()
    assert panel.snapshot()["status"]["pattern"] == "safe_mode"
    panel.release("preset_down")                          # letting go is not a PRESET- press
    pc.flush()
    assert control.state.active_preset == "transparent"
    control.recall("loud")                                # leaving safe mode
    pc.loop.tick()
    assert panel.snapshot()["status"]["pattern"] == "running"


def test_no_engine_shows_error_and_meters_go_dark(box):
    pc, control, panel = box()
    by_hand(pc)
    pc.loop.tick()
    assert panel.snapshot()["status"]["pattern"] == "running"
    control.meters.reading["state"] = "device_lost"       # the USB interface was unplugged
    pc.loop.tick()
    assert panel.snapshot()["status"]["pattern"] == "error"
    control.meters.reading = None                         # no engine at all
    pc.loop.tick()
    snap = panel.snapshot()
    assert snap["status"]["pattern"] == "error"
    assert panel.bars["loudness"].lit == 0


def test_meters_follow_the_recalled_target(box):
    pc, control, panel = box()
    by_hand(pc)
    pc.loop.tick()
    assert panel.bars["loudness"].lit == 3               # -14.5 against -14: above -1 LU
    control.recall("loud")                               # target -9: now -5.5 LU
    pc.loop.tick()
    assert panel.bars["loudness"].lit == 1


def test_panel_keeps_working_when_the_web_ui_fails(box):
    pc, control, panel = box()

    def broken_web_ui(changes, source):
        raise RuntimeError("web server gone")

    control.state.subscribe(broken_web_ui)
    control.state.set({"in.trim_db": 0.0}, "test")
    panel.turn("input", 4)
    pc.flush()
    assert control.state.get("in.trim_db") == pytest.approx(4.0)
    control.recall("loud")
    assert panel.knobs["input"].position == pytest.approx(30 / 48)


def test_a_failing_action_does_not_stop_the_panel(box):
    pc, control, panel = box()

    def refuse(*a, **kw):
        raise OSError("engine socket gone")

    control.bypass = refuse
    panel.click("bypass")
    pc.flush()
    assert "engine socket gone" in pc.last_error
    control.state.set({"in.trim_db": 0.0}, "test")
    panel.turn("input", 1)
    pc.flush()
    assert control.state.get("in.trim_db") == pytest.approx(1.0)


def test_macro_position_of_values_off_the_curve_is_the_nearest_point():
    b = KnobBinding(KnobSpec("glue", "pot", macro="glue", channel=2))
    values = schema.defaults()
    values.update(schema.MACROS["glue"].values(0.3))
    assert b.position(values) == pytest.approx(0.3, abs=0.003)
    values["mb.low.threshold_db"] -= 3.0
    assert 0.3 < b.position(values) < 0.45


def test_a_press_during_a_web_claim_is_the_claim_not_the_action(box):
    from webui.claim import ClaimWindow

    pc, control, panel = box()
    control.claim = ClaimWindow(seconds=30)
    control.claim.arm()
    # the controller's own loop ticks at >= 30 Hz (a tick begun before the arm may still write
    # the old pattern), so the claim pattern must show within a few ticks
    deadline = time.monotonic() + 0.5
    while panel.snapshot()["status"]["pattern"] != "claim" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert panel.snapshot()["status"]["pattern"] == "claim"
    panel.click("bypass")
    pc.flush()
    assert control.bypassed is False and not control.claim.armed
    panel.click("bypass")                                 # the next press is a press again
    pc.flush()
    assert control.bypassed is True


def test_after_the_safe_mode_hold_preset_down_works_again(box):
    panel = SimulatedPanel(SPEC)
    panel.press("preset_down")
    pc, control, _ = box(panel=panel, safe_mode=safe_mode_held(panel))
    panel.hold("preset_down", 0.4)                        # held past its hold time: still the boot hold
    pc.flush()
    assert control.state.active_preset == "transparent"
    panel.click("preset_down")                            # a new press: previous preset
    pc.flush()
    assert control.state.active_preset == "loud"


def test_a_shutdown_command_that_cannot_run_flashes_error(box):
    def missing(argv):
        raise FileNotFoundError(2, "No such file or directory", argv[0])

    pc, control, panel = box(run=missing)
    panel.hold("bypass")
    pc.flush()
    assert pc.status(control.read_meters()) == "error" and "No such file" in pc.last_error


def test_the_demos_resting_shafts_start_at_the_settings_and_answer_the_first_click(box):
    """``masterbox demo``'s panel (``resting_shafts``): every pot's shaft starts where its parameter is,
    picked up, and the panel loop's polls of it change no value (not even the ADC count's rounding);
    a recall moves a shaft no hand has turned (TONE, with its centre detent, too); the first click of
    the web's virtual panel moves the parameter at once; a shaft that was turned then stays put on a
    recall and waits to be picked up, as on the box."""
    pc, control, panel = box(panel=SimulatedPanel(SPEC, resting_shafts=True))
    control.state.set({"out.drive_db": 7.3, "eq.tone_db": 1.7, "st.width": 133.0}, "test")
    control_values = control.state.values
    for _ in range(5):
        panel.poll_pots()
    pc.flush()
    assert control.state.values == control_values          # no rounding written back, no "modified"
    for name, knob in panel.pots.items():
        assert knob.picked_up, name
        assert knob.physical == pytest.approx(knob.position, abs=1.5 / 1023), name
    control.recall("loud")                                  # width 150 %: the untouched shaft follows
    assert panel.knobs["width"].picked_up and panel.knobs["width"].physical == pytest.approx(0.75, abs=1e-3)
    before = control.state.get("out.drive_db")
    panel.turn("output", 1)                                 # one click of the virtual panel
    pc.flush()
    assert control.state.get("out.drive_db") > before
    panel.turn("width", -1)
    pc.flush()
    turned = panel.knobs["width"].physical
    assert control.state.get("st.width") == pytest.approx(turned * 200) and turned < 0.75
    control.recall("transparent")                           # width 100 %: the turned shaft stays
    assert not panel.knobs["width"].picked_up and panel.knobs["width"].physical == turned


def test_a_simulated_panels_shafts_start_at_0_unless_they_rest(box):
    """Without ``resting_shafts`` (tests, `masterbox run --sim-panel` as before), a pot's shaft reads 0
    and waits to be picked up, as a box's pots may after power-on."""
    pc, control, panel = box()
    control.state.set({"st.width": 133.0}, "test")
    pc.flush()
    panel.poll_pots()
    assert panel.knobs["width"].physical == 0.0 and not panel.knobs["width"].picked_up


@pytest.mark.parametrize("resting", [False, True])
def test_each_click_of_the_virtual_panel_moves_a_centred_pot_one_hundredth(box, resting):
    """A simulated pot with a centre detent (TONE at 0 dB): each click moves its reading by 1 % of the
    travel, the first one out of the detent too (the shaft used to move 1 % and stay inside the 2.5 %
    detent, so the first two clicks did nothing), and back to exactly the centre."""
    pc, control, panel = box(panel=SimulatedPanel(SPEC, resting_shafts=resting))
    control.state.set({"eq.tone_db": 0.0}, "test")
    if not resting:
        panel.set_pot("tone", 0.5)
    pc.flush()
    lo, hi = schema.BY_ID["eq.tone_db"].min, schema.BY_ID["eq.tone_db"].max
    readings = []
    for step in (1, 1, 1, -1, -1, -1):
        panel.turn("tone", step)
        pc.flush()
        readings.append(control.state.get("eq.tone_db"))
    span = (hi - lo) / 100
    assert readings[:3] == pytest.approx([span, 2 * span, 3 * span], abs=span * 0.1), readings
    assert readings[5] == 0.0 and readings[3] == pytest.approx(2 * span, abs=span * 0.1), readings
