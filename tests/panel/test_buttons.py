"""Short and long presses, timed by gpiozero's hold thread, without blocking the caller."""

from __future__ import annotations

import threading
import time

from gpiozero.pins.mock import MockFactory

from hw.panel.buttons import PanelButton


def make(**kw):
    f = MockFactory()
    b = PanelButton(4, pin_factory=f, **kw)
    got = []
    b.when_short_press = lambda: got.append("short")
    b.when_long_press = lambda: got.append(("long", threading.current_thread().name))
    return b, got


def test_short_press():
    b, got = make(hold_time=0.3)
    b.pin.drive_low()
    time.sleep(0.05)
    b.pin.drive_high()
    assert got == ["short"]
    b.close()


def test_long_press_fires_once_while_held_and_no_short():
    b, got = make(hold_time=0.2)
    t0 = time.monotonic()
    b.pin.drive_low()
    assert time.monotonic() - t0 < 0.05          # pressing returns at once
    deadline = time.monotonic() + 2
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    held_after = time.monotonic() - t0
    assert got and got[0][0] == "long" and got[0][1] != threading.current_thread().name
    assert 0.18 <= held_after < 1.0
    time.sleep(0.3)                               # still held: no repeat
    b.pin.drive_high()
    assert len(got) == 1
    b.close()


def test_contact_glitch_is_not_a_press():
    b, got = make(hold_time=0.3, min_press=0.02)
    for _ in range(5):
        b.pin.drive_low()
        b.pin.drive_high()
    assert got == []
    b.close()


def test_hold_times_are_configurable_per_button():
    a, _ = make(hold_time=2.0)
    b, _ = make(hold_time=5.0)
    assert (a.hold_time, b.hold_time) == (2.0, 5.0)
    a.close(), b.close()
