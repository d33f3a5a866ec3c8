"""Meters on MockPWMPin / mock pins: bar graphs with peak hold, VU needle ballistics, clip
LED, status patterns, and the panel showing one reading of the engine's meters."""

from __future__ import annotations

import math

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from hw.panel.meters import ClipLED, PeakHoldBarGraph, StatusLED, VUBallistics, VUNeedle
from hw.panel.panel import MeterContext
from hw.panel.simulated import SimulatedPanel


@pytest.fixture
def pwm_factory():
    return MockFactory(pin_class=MockPWMPin)


def leds(bar):
    return [int(led.pin.state) for led in bar.leds]


def test_bar_thresholds_and_peak_hold(pwm_factory):
    bar = PeakHoldBarGraph(2, 3, 4, 5, thresholds=(-6, -3, -1, 1), peak_hold=1.5, pin_factory=pwm_factory)
    bar.show(-4.0, 0.0)
    assert leds(bar) == [1, 0, 0, 0]
    bar.show(0.0, 0.1)
    assert leds(bar) == [1, 1, 1, 0]
    bar.show(-7.0, 0.2)                    # level drops: the peak LED stays lit
    assert leds(bar) == [0, 0, 1, 0]
    bar.show(-7.0, 1.5)
    assert leds(bar) == [0, 0, 1, 0]
    bar.show(-7.0, 1.7)                    # 1.5 s after the peak: released
    assert leds(bar) == [0, 0, 0, 0]
    bar.show(None, 2.0)                    # no engine: dark
    assert leds(bar) == [0, 0, 0, 0]
    bar.close()


def test_bar_only_writes_pins_that_change(pwm_factory):
    bar = PeakHoldBarGraph(2, 3, 4, thresholds=(1, 3, 6), peak_hold=0, pin_factory=pwm_factory)
    bar.show(4.0, 0.0)
    n = [len(led.pin.states) for led in bar.leds]
    for i in range(50):
        bar.show(4.0 + (i % 3) * 0.1, i * 0.025)
    assert [len(led.pin.states) for led in bar.leds] == n
    bar.close()


def step_response(b: VUBallistics, dt: float, seconds: float):
    out, t = [], 0.0
    while t < seconds - 1e-9:
        t += dt
        out.append((t, b.step(1.0, dt)))
    return out


def test_vu_ballistics_99_percent_in_300_ms_with_small_overshoot():
    resp = step_response(VUBallistics(), 0.001, 1.5)
    t99 = next(t for t, x in resp if x >= 0.99)
    assert t99 == pytest.approx(0.300, abs=0.002)
    over = max(x for _, x in resp) - 1.0
    assert 0.01 <= over <= 0.015            # IEC 60268-17: 1 to 1.5 %
    assert resp[-1][1] == pytest.approx(1.0, abs=1e-3)


def test_vu_ballistics_do_not_depend_on_the_update_rate():
    fine = dict((round(t, 3), x) for t, x in step_response(VUBallistics(), 0.001, 0.6))
    for dt in (0.02, 0.025, 0.05):          # 50, 40 and 20 updates a second
        for t, x in step_response(VUBallistics(), dt, 0.6):
            assert x == pytest.approx(fine[round(t, 3)], abs=1e-9)


def test_needle_drives_pwm_duty_on_a_vu_face(pwm_factory):
    n = VUNeedle(12, scale="vu", pin_factory=pwm_factory)
    assert n.deflection_for(0.0) == pytest.approx(10 ** (-3 / 20))    # 0 VU at 70.8 %
    assert n.deflection_for(3.0) == pytest.approx(1.0)
    t = 0.0
    for _ in range(60):                     # 2 s at 30 Hz of a steady 0 VU
        n.show(0.0, t)
        t += 1 / 30
    assert n.pin.state == pytest.approx(0.708, abs=0.005)
    assert n.pin.frequency == 1000
    n.show(None, t + 2.0)                   # silence: falls to rest
    n.show(None, t + 4.0)
    assert n.pin.state < 0.01
    n.close()


def test_linear_needle_for_gain_reduction(pwm_factory):
    n = VUNeedle(13, scale="linear", span=(0, 20), pin_factory=pwm_factory)
    assert n.deflection_for(5.0) == pytest.approx(0.25)
    n.close()


def test_clip_led_holds_each_over(pwm_factory):
    c = ClipLED(27, hold=1.0, pin_factory=pwm_factory)
    c.show(True, 0.0)
    assert c.is_lit
    c.show(False, 0.9)
    assert c.is_lit
    c.show(False, 1.05)
    assert not c.is_lit
    c.close()


@pytest.mark.parametrize("status,expect", [
    ("running", [1] * 8),
    ("capturing", [1, 1, 1, 1, 0, 0, 0, 0]),
    ("learning", [1, 0, 1, 0, 1, 0, 1, 0]),
    ("error", [1, 0, 1, 0, 0, 0, 0, 0]),
    ("safe_mode", [1, 0, 0, 0, 0, 0, 0, 0]),
    ("off", [0] * 8),
])
def test_status_patterns(pwm_factory, status, expect):
    led = StatusLED(22, pin_factory=pwm_factory)
    got = []
    for i in range(8):                      # sampled every 125 ms from the pattern's start
        led.show(status, 10.0 + i * 0.125 + 0.01)
        got.append(int(led.is_lit))
    assert got == expect
    led.close()


def test_claim_flicker(pwm_factory):
    led = StatusLED(22, pin_factory=pwm_factory)
    got = []
    led.show("claim", 5.0)                  # the pattern starts here
    for i in range(8):                      # sampled every 25 ms, mid-slot: 10 Hz flicker
        led.show("claim", 5.0 + i * 0.025 + 0.0125)
        got.append(int(led.is_lit))
    assert got == [1, 1, 0, 0, 1, 1, 0, 0]
    led.close()


def test_panel_shows_engine_meters():
    p = SimulatedPanel()
    ctx = MeterContext(target_lufs=-14.0, ceiling_dbtp=-1.0, status="running")
    m = {"out_short_term_lufs": -15.5, "out_momentary_lufs": -14.0, "gr_low_db": 0.5, "gr_mid_db": 3.5,
         "gr_high_db": 1.0, "gr_limiter_db": 2.0, "out_true_peak_dbtp": -1.5}
    p.show_meters(m, ctx, 0.0)
    snap = p.snapshot()
    assert snap["bars"]["loudness"]["leds"] == [True, True, False, False]     # -1.5 LU: above -3, below -1
    assert snap["bars"]["gr"]["leds"] == [True, True, False]                   # 3.5 dB
    assert snap["clip"] is False and snap["status"] == {"pattern": "running", "lit": True}
    p.show_meters(dict(m, out_true_peak_dbtp=-0.4), ctx, 0.1)                 # over the ceiling
    assert p.snapshot()["clip"] is True
    p.show_meters(dict(m, out_true_peak_dbtp=-0.4), ctx, 1.5)                 # same (running max): no new over
    assert p.snapshot()["clip"] is False
    # a recall to a louder target moves the loudness bar at once
    p.show_meters(m, MeterContext(target_lufs=-9.0, ceiling_dbtp=-1.0), 1.6)
    assert p.bars["loudness"].lit == 0                   # -6.5 LU now (only the held peak shows)
    assert p.snapshot()["bars"]["loudness"]["leds"] == [False, True, False, False]
    # the needle approaches the VU reading of momentary loudness at the target (0 VU)
    for i in range(60):
        p.show_meters(m, ctx, 2.0 + i / 30)
    assert p.snapshot()["needles"]["vu"]["deflection"] == pytest.approx(10 ** (-3 / 20), abs=0.01)
    assert p.snapshot()["needles"]["gr_needle"]["deflection"] == pytest.approx(3.5 / 20, abs=0.01)
    p.close()


def test_vu_omega_is_consistent():
    b = VUBallistics(rise=0.3)
    assert b.omega > 0 and 0.8 < b.zeta < 0.83 and math.isfinite(b.omega)
