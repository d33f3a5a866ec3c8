"""The panel's logical entry points (``turn``, ``press_for``): what the web's virtual panel calls on a
physical panel. They must do exactly what the GPIO edges of a hand do, because the edges end there too."""

from __future__ import annotations

import time

import pytest
from gpiozero.pins.mock import MockFactory

from hw.panel.buttons import PanelButton
from hw.panel.encoder import Accelerator, RotaryKnob
from hw.panel.panel import Panel
from hw.panel.simulated import CCW_DETENT, CW_DETENT, MockMCP3008, PanelMockFactory, drive_contact
from hw.panel.spec import DEFAULT_PANEL


def _edges(knob, detents, pause=0.0):
    for _ in range(abs(detents)):
        for sa, sb in (CW_DETENT if detents > 0 else CCW_DETENT):
            drive_contact(knob.a.pin, sa)
            drive_contact(knob.b.pin, sb)
        time.sleep(pause)


def test_a_turn_and_the_same_detents_by_edges_move_an_encoder_alike():
    by_hand = RotaryKnob(5, 6, 13, detents=96, accelerator=Accelerator(8.0), pin_factory=MockFactory())
    by_web = RotaryKnob(5, 6, 13, detents=96, accelerator=Accelerator(8.0), pin_factory=MockFactory())
    seen = []
    by_web.when_changed = seen.append
    _edges(by_hand, 3, pause=0.25)  # slow: no acceleration
    assert by_web.turn(3) == pytest.approx(by_hand.position) == pytest.approx(3 / 96)
    assert seen == [pytest.approx(1 / 96 * 3)] and by_web.steps == by_hand.steps == 3
    # a deliberate turn is never accelerated, however fast the calls come
    for _ in range(10):
        by_web.turn(1)
    assert by_web.position == pytest.approx(13 / 96)
    # the push switch held (by a hand on the real knob): fine steps for both paths
    drive_contact(by_web.push.pin, 1)
    drive_contact(by_hand.push.pin, 1)
    _edges(by_hand, -2)
    assert by_web.turn(-2) == pytest.approx(13 / 96 - 2 / 960)
    assert by_hand.position == pytest.approx(3 / 96 - 2 / 960)
    # the ends hold
    assert by_web.turn(-500) == 0.0 and by_web.turn(0) == 0.0
    by_hand.close()
    by_web.close()


def test_press_classification_is_the_edges_rule():
    b = PanelButton(4, hold_time=2.0, pin_factory=MockFactory())
    assert [b.classify(s) for s in (None, 0.0, 0.019, 0.02, 1.99, 2.0, 7.5)] == \
        ["short", None, None, "short", "short", "long", "long"]
    got = []
    b.when_short_press = lambda: got.append("short")
    b.pin.drive_low()
    time.sleep(0.005)
    b.pin.drive_high()  # a glitch by edges: nothing, as classify(0.005) says
    b.pin.drive_low()
    time.sleep(0.05)
    b.pin.drive_high()
    assert got == ["short"]
    b.close()


@pytest.fixture
def physical_panel():
    factory = PanelMockFactory()
    a = DEFAULT_PANEL.adc
    chip = MockMCP3008(a.clock, a.mosi, a.miso, a.select, pin_factory=factory)
    panel = Panel(DEFAULT_PANEL, pin_factory=factory)
    yield panel, chip
    panel.close()


def test_press_for_on_a_physical_panel_fires_what_the_button_would(physical_panel):
    panel, _ = physical_panel
    got = []
    panel.on_button = lambda role, kind: got.append((role, kind))
    assert panel.press_for("preset_up") == "short"
    assert panel.press_for("preset_up", 2.1) == "long"
    assert panel.press_for("bypass", 4.9) == "short"  # BYPASS's hold is 5 s
    assert panel.press_for("bypass", 5.0) == "long"
    assert panel.press_for("learn", 0.001) is None
    assert got == [("preset_up", "short"), ("preset_up", "long"), ("bypass", "short"), ("bypass", "long")]
    assert not any(b.is_pressed for b in panel.buttons.values())  # no pin was touched


def test_a_turn_of_a_physical_pot_moves_the_parameter_and_rearms_pickup(physical_panel):
    panel, chip = physical_panel
    got = []
    panel.on_knob = lambda name, pos: got.append((name, pos))
    knob = panel.knobs["width"]
    chip.channels[3] = 512
    knob.poll()
    assert knob.physical == 0.5    # in WIDTH's centre detent: exactly 100 %
    knob.set_position(0.5)  # picked up: the shaft points at the value
    assert knob.picked_up
    got.clear()
    assert panel.turn("width", 10) == pytest.approx(0.60)
    assert got == [("width", pytest.approx(0.60))]
    assert not knob.picked_up and knob.pickup_direction == 1 and knob.physical == 0.5
    # a hand turning the shaft up through the new value picks it up and takes over from there
    chip.channels[3] = 700
    knob.poll()
    assert knob.picked_up and knob.position == knob.physical > 0.6


def test_the_simulated_panel_keeps_driving_real_edges():
    from hw.panel.simulated import SimulatedPanel

    panel = SimulatedPanel()
    got = []
    panel.on_button = lambda role, kind: got.append((role, kind))
    pin = panel.pin(DEFAULT_PANEL.button("capture").pin)
    before = len(pin.states)
    assert panel.press_for("capture") == "short"
    assert len(pin.states) == before + 2 and got == [("capture", "short")]  # down and up on the mock pin
    assert panel.snapshot()["simulated"] is True
    panel.close()
