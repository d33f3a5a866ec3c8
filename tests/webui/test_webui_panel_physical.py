"""The virtual panel drives a *physical* panel: web turns and presses act as a hand on it would.

The panel here is :class:`hw.panel.Panel` (what the box builds, not ``SimulatedPanel``) on
gpiozero mock pins, with the knob INPUT configured as a rotary encoder (GPIO 2/3, push 18) and
the others as potentiometers on an MCP3008 (the mock chip answers on the SPI pins, as the
hardware would). The engine is real (``masterbox engine --backend sim``, real time), so a web
turn of INPUT travels API -> ``Panel.turn`` -> the encoder's own step -> panel controller ->
state -> engine, and the audio it makes louder or quieter comes back through the shared meters
onto the real panel's LED and needle pins.
"""

from __future__ import annotations

import subprocess
import time

import pytest
from mbweb_helpers import Api, set_password, wait_until

ENCODER_A, ENCODER_B, ENCODER_PUSH = 2, 3, 18
LOUDNESS_LEDS = (23, 24, 25, 26)
VU_PIN, STATUS_PIN = 12, 22


@pytest.fixture(scope="module")
def engine_run_dir(tmp_path_factory):
    """One engine for the module's tests, in a data root and run folder of its own: each test's
    Control meets it as a new box meets a running engine, and pushes its whole state to it first."""
    import os
    import sys
    from pathlib import Path

    from firmware.control_client import EngineClient

    home = tmp_path_factory.mktemp("engine-home")
    run = home / "run"
    env = {**os.environ, "MASTERBOX_HOME": str(home), "MASTERBOX_RUN": str(run),
           "MASTERBOX_CONFIG": str(home / "masterbox.toml")}
    exe = Path(sys.executable).with_name("masterbox")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "firmware.cli"]
    log = open(home / "engine.log", "wb")
    proc = subprocess.Popen(cmd + ["engine", "--backend", "sim", "--wait-ready", "--no-realtime", "--duration", "600"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    # a numba cache made cold by a change to dsp/ compiles first
    if not EngineClient(run / "engine.sock").wait_running(300, gave_up=lambda: proc.poll() is not None):
        proc.kill()
        raise AssertionError((home / "engine.log").read_text())
    yield run
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture
def engine(engine_run_dir, monkeypatch):
    from firmware.control_client import EngineClient

    monkeypatch.setenv("MASTERBOX_RUN", str(engine_run_dir))  # Control's client and meters reader find it
    client = EngineClient()
    assert client.status()["state"] == "running"
    return client


@pytest.fixture
def physical(engine, _isolated_home, factory_dir):
    """The box with a physical panel (hw.panel.Panel on mock pins), its controller, the app."""
    from firmware.captures import CaptureIndex
    from firmware.config import panel_spec
    from firmware.control import Control
    from firmware.panel_controller import PanelController
    from firmware.presets import PresetStore
    from firmware.state import StateStore
    from hw.panel.panel import Panel
    from hw.panel.simulated import MockMCP3008, PanelMockFactory
    from webui import create_app

    spec = panel_spec({"panel": {"knobs": {"input": {"param": "in.trim_db",
                                                     "encoder": [ENCODER_A, ENCODER_B, ENCODER_PUSH]}}}})
    factory = PanelMockFactory()
    chip = MockMCP3008(spec.adc.clock, spec.adc.mosi, spec.adc.miso, spec.adc.select, pin_factory=factory)
    panel = Panel(spec, pin_factory=factory)
    assert type(panel) is Panel and not hasattr(panel, "click")
    presets = PresetStore(_isolated_home / "presets", factory_dir=factory_dir)
    control = Control(state=StateStore(_isolated_home / "state.json", presets=presets), presets=presets,
                      captures=CaptureIndex(_isolated_home / "captures"))
    control.panel = panel
    controller = PanelController(control, panel=panel, config={}).start()
    app = create_app(control, {"testing": True})
    set_password(app)
    api = Api(app.test_client())
    assert api.login().status_code == 200
    box = type("Box", (), {})()
    box.api, box.control, box.panel, box.controller, box.factory, box.chip, box.engine = \
        api, control, panel, controller, factory, chip, engine
    yield box
    app.extensions["masterbox"].broadcaster.stop()
    controller.close()
    panel.close()
    control.close()


def _turn(box, name, detents):
    r = box.api.post(f"/api/v1/panel/knobs/{name}/turn", json={"detents": detents})
    assert r.status_code == 200, r.get_json()
    box.controller.flush()
    return r.get_json()


def _press(box, role, hold_s=None):
    r = box.api.post(f"/api/v1/panel/buttons/{role}/press", json={} if hold_s is None else {"hold_s": hold_s})
    assert r.status_code == 200, r.get_json()
    box.controller.flush()
    return r.get_json()


def _engine_value(box, pid):
    return box.engine.request("status", values=True)["values"][pid]


def _leds(box):
    return [int(box.factory.pin(p).state) for p in LOUDNESS_LEDS]


def _wait_leds(box, ok, timeout=30.0):
    """Wait for the loudness bar's pins (real time: a 3 s loudness window on a shared machine)."""
    try:
        wait_until(lambda: ok(_leds(box)), timeout=timeout)
    except AssertionError:
        m = box.control.read_meters() or {}
        raise AssertionError(f"loudness LEDs {_leds(box)}; short-term {m.get('out_short_term_lufs')}, "
                             f"state {m.get('state')}, xruns {m.get('xruns')}") from None


def test_a_web_turn_steps_the_encoder_like_a_hand_and_the_real_leds_follow(physical):
    box = physical
    from hw.panel.simulated import CW_DETENT, drive_contact

    box.control.recall("transparent")
    assert box.api.get("/api/v1/panel").get_json()["simulated"] is False
    knob = box.panel.knobs["input"]
    a, b = box.factory.pin(ENCODER_A), box.factory.pin(ENCODER_B)
    edges_before = (len(a.states), len(b.states))

    # the web: 2 detents = 2 steps of the knob's 96 over -24..+24 dB, exactly as a hand's
    _turn(box, "input", 2)
    assert box.control.state.get("in.trim_db") == pytest.approx(1.0, abs=1e-6)
    assert knob.steps == 2 and (len(a.states), len(b.states)) == edges_before  # no edges: the logical path
    # a hand: 2 detents of real quadrature edges on the encoder's pins, slowly (no acceleration)
    for _ in range(2):
        for sa, sb in CW_DETENT:
            drive_contact(a, sa)
            drive_contact(b, sb)
        time.sleep(0.3)
    box.controller.flush()
    assert box.control.state.get("in.trim_db") == pytest.approx(2.0, abs=1e-6) and knob.steps == 4
    wait_until(lambda: _engine_value(box, "in.trim_db") == pytest.approx(2.0, abs=1e-6), 15.0)

    # turned right down: the programme is far below the target, the loudness bar goes dark
    _turn(box, "input", -48)
    assert box.control.state.get("in.trim_db") == -22.0
    wait_until(lambda: _engine_value(box, "in.trim_db") == -22.0, 15.0)
    _wait_leds(box, lambda leds: leds == [0, 0, 0, 0])
    time.sleep(1.0)
    quiet_vu = box.factory.pin(VU_PIN).state
    # turned right up: the real LED bar lights and the VU needle swings up
    _turn(box, "input", 48)
    _turn(box, "input", 48)
    assert box.control.state.get("in.trim_db") == 24.0
    _wait_leds(box, lambda leds: sum(leds) >= 2)
    vu = []
    try:
        wait_until(lambda: vu.append(box.factory.pin(VU_PIN).state) or vu[-1] > quiet_vu + 0.2, timeout=15)
    except AssertionError:
        raise AssertionError((quiet_vu, vu[::10])) from None
    snap = box.api.get("/api/v1/panel").get_json()
    assert sum(snap["bars"]["loudness"]["leds"]) >= 1 and snap["knobs"]["input"]["position"] == 1.0


def test_a_web_turn_of_a_potentiometer_moves_the_parameter_and_rearms_pickup(physical):
    box = physical
    box.chip.channels[3] = 512  # the WIDTH pot's shaft sits mid-travel
    wait_until(lambda: box.panel.knobs["width"].physical is not None, 15.0)
    box.control.set({"st.width": 100.0})
    before = box.panel.knobs["width"].position
    snap = _turn(box, "width", 10)
    after = box.panel.knobs["width"].position
    assert after == pytest.approx(before + 0.10, abs=1e-6)
    expected = box.controller.bindings["width"].values(after)["st.width"]
    assert box.control.state.get("st.width") == pytest.approx(expected) and expected > 100.0
    assert snap["knobs"]["width"]["picked_up"] is False  # the shaft did not move: a hand picks up there
    wait_until(lambda: _engine_value(box, "st.width") == pytest.approx(expected), 15.0)


def test_web_presses_act_as_short_and_long_presses_of_the_real_buttons(physical):
    box = physical
    # short press of BYPASS: A/B on, in the engine too
    r = _press(box, "bypass")
    assert r["press"] == "short" and box.control.bypassed is True
    wait_until(lambda: box.engine.status()["bypass"] is True, 15.0)
    # a press shorter than the BYPASS hold (5 s: shutdown) is still a short press
    assert _press(box, "bypass", 0.5)["press"] == "short" and box.control.bypassed is False
    # a contact glitch does nothing
    assert _press(box, "bypass", 0.005)["press"] is None and box.control.bypassed is False

    # CAPTURE starts a capture; the real status LED shows it
    assert _press(box, "capture")["press"] == "short"
    wait_until(lambda: box.engine.status()["capturing"] is True, 15.0)
    seen = []
    try:
        wait_until(lambda: seen.append(box.api.get("/api/v1/panel").get_json()["status"]["pattern"]) or
              seen[-1] == "capturing", timeout=20)
    except AssertionError:
        raise AssertionError(f"status patterns seen: {sorted(set(seen))}; last panel error: "
                             f"{box.controller.last_error}; meters: {box.control.read_meters()}") from None
    lit = set()
    wait_until(lambda: lit.add(bool(box.factory.pin(STATUS_PIN).state)) or len(lit) == 2, timeout=5)  # it blinks
    _press(box, "capture")
    wait_until(lambda: box.engine.status()["capturing"] is False, 15.0)

    # long press of PRESET+ (hold 2 s): save into the active user preset
    box.control.save_preset_as("mine")
    box.control.set({"st.width": 150.0})
    assert box.control.presets.get("mine").params["st.width"] != 150.0
    assert _press(box, "preset_up", 2.1)["press"] == "long"
    assert box.control.presets.get("mine").params["st.width"] == 150.0
    assert box.control.state.active_preset == "mine"
    # short press of PRESET+: the next preset
    assert _press(box, "preset_up")["press"] == "short"
    assert box.control.state.active_preset != "mine"


def test_capture_held_is_ref_once_a_reference_is_chosen(physical, _isolated_home):
    """CAPTURE held 1 s on the real button: with no reference chosen it is a press (a capture starts,
    nothing is lost to a long press); once a capture is the reference (the real worker prepares it,
    the real engine maps it) it plays the reference in place of the master, the engine says it is
    heard, level-matched, and the status LED says the speakers do not hear the master; held again,
    the master. REF switched on from the web is switched off by the next hold."""
    from mbweb_helpers import write_wav

    box = physical
    assert box.control.reference.info is None
    r = _press(box, "capture", 1.2)
    assert r["press"] == "long"
    wait_until(lambda: box.engine.status()["capturing"] is True, 15.0)     # no reference: a hold is a press
    wait_until(lambda: (box.control.read_meters() or {}).get("capturing") is True, 15.0)  # what the panel reads
    _press(box, "capture")
    wait_until(lambda: box.engine.status()["capturing"] is False, 15.0)

    write_wav(_isolated_home / "captures" / "record.wav", seconds=3.0, rate=44100)
    assert box.control.reference.load("record")["ok"]
    assert box.engine.status()["reference"]["heard"] is False

    def ref():
        return box.engine.status()["reference"]

    def pattern():
        return box.api.get("/api/v1/panel").get_json()["status"]["pattern"]

    captures_before = box.control.captures.list()
    assert _press(box, "capture", 1.2)["press"] == "long"
    wait_until(lambda: ref()["heard"] is True, 15.0)
    assert ref()["on"] is True and ref()["matched_to"] in ("integrated", "short_term")  # level-matched (as REF)
    assert box.engine.status()["capturing"] is False and box.control.captures.list() == captures_before
    wait_until(lambda: pattern() == "monitor", 15.0)
    assert box.controller.last_error is None
    assert _press(box, "capture", 1.2)["press"] == "long"
    wait_until(lambda: ref()["heard"] is False, 15.0)
    wait_until(lambda: pattern() == "running", 15.0)

    r = box.api.post("/api/v1/reference/switch", json={"on": True})       # on from the web ...
    assert r.status_code == 200, r.get_json()
    wait_until(lambda: (box.control.read_meters() or {}).get("reference") is True, 15.0)
    _press(box, "capture", 1.2)                                            # ... off from the panel
    wait_until(lambda: ref()["heard"] is False, 15.0)
    assert box.engine.status()["capturing"] is False
