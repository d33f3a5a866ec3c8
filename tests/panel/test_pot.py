"""Potentiometers through the mock MCP3008: readings, hysteresis against jitter, pick-up."""

from __future__ import annotations

import random

import pytest
from gpiozero import MCP3008

from hw.panel.pot import PotKnob
from hw.panel.simulated import MockMCP3008, PanelMockFactory


@pytest.fixture
def chip_and_factory():
    f = PanelMockFactory()
    chip = MockMCP3008(11, 10, 9, 8, pin_factory=f)
    yield chip, f
    chip.close()


SPI = {"clock_pin": 11, "mosi_pin": 10, "miso_pin": 9, "select_pin": 8}


def test_mock_mcp3008_answers_every_channel(chip_and_factory):
    chip, f = chip_and_factory
    adcs = [MCP3008(channel=c, pin_factory=f, **SPI) for c in range(8)]
    chip.channels = [0, 1, 511, 512, 1022, 1023, 77, 900]
    assert [a.raw_value for a in adcs] == chip.channels
    assert adcs[5].value == pytest.approx(1.0)
    for a in adcs:
        a.close()


def make(f, **kw):
    return PotKnob(0, spi=SPI, pin_factory=f, **kw)


def test_still_knob_with_noisy_adc_never_moves_the_parameter(chip_and_factory):
    chip, f = chip_and_factory
    knob = make(f, takeover="jump")
    changes = []
    knob.when_changed = changes.append
    chip.channels[0] = 600
    knob.poll()
    assert changes == [pytest.approx(600 / 1023)]
    rng = random.Random(1)
    for _ in range(300):                 # +-3 counts of noise around a still knob
        chip.channels[0] = 600 + rng.randint(-3, 3)
        knob.poll()
    # the band is +-3 counts around the last accepted reading (600): nothing moves
    assert len(changes) == 1
    chip.channels[0] = 610               # a real movement
    knob.poll()
    assert changes[-1] == pytest.approx(610 / 1023)
    knob.close()


def test_ends_of_travel_are_reachable_despite_hysteresis(chip_and_factory):
    chip, f = chip_and_factory
    knob = make(f, takeover="jump", hysteresis=5)
    for raw, pos in ((500, 500 / 1023), (3, 0.0), (1020, 1.0), (1023, 1.0), (0, 0.0)):
        chip.channels[0] = raw
        knob.poll()
        assert knob.position == pytest.approx(pos)
    knob.close()


def test_pickup_after_the_parameter_moved_away(chip_and_factory):
    chip, f = chip_and_factory
    knob = make(f)
    changes = []
    knob.when_changed = changes.append
    chip.channels[0] = 200                # knob physically at ~0.2
    knob.poll()
    knob.set_position(0.6)                # a preset recall put the parameter at 0.6
    assert not knob.picked_up and knob.pickup_direction == 1
    for raw in (250, 400, 550):           # turning towards it: nothing happens yet
        chip.channels[0] = raw
        knob.poll()
    assert changes == [] and knob.position == 0.6
    chip.channels[0] = 700                # passes through 0.6 between two readings: picked up
    knob.poll()
    assert knob.picked_up and changes == [pytest.approx(700 / 1023)]
    knob.close()


def test_pickup_by_coming_close_and_from_above(chip_and_factory):
    chip, f = chip_and_factory
    knob = make(f, pickup_window=0.02)
    chip.channels[0] = 1000
    knob.poll()
    knob.set_position(0.3)
    assert knob.pickup_direction == -1
    chip.channels[0] = 320                # within 2 % of 0.3
    knob.poll()
    assert knob.picked_up and knob.position == pytest.approx(320 / 1023)
    knob.close()


def test_set_position_near_the_knob_keeps_it_picked_up(chip_and_factory):
    chip, f = chip_and_factory
    knob = make(f)
    chip.channels[0] = 512
    knob.set_position(0.5)
    knob.poll()
    assert knob.picked_up
    knob.set_position(0.505)              # the web nudged it by less than the window
    assert knob.picked_up
    knob.set_position(0.9)                # a recall moved it far: re-armed
    assert not knob.picked_up
    knob.close()


def test_a_parameter_brought_to_the_knob_picks_it_up(chip_and_factory):
    chip, f = chip_and_factory
    knob = make(f)
    chip.channels[0] = 0
    knob.poll()
    knob.set_position(0.6)
    assert not knob.picked_up
    knob.set_position(0.0)                # e.g. the web UI set the parameter to where the knob is
    assert knob.picked_up


def test_centre_detent_reads_exactly_the_centre_and_keeps_both_ends(chip_and_factory):
    chip, f = chip_and_factory
    knob = make(f, takeover="jump", centre_detent=0.025, hysteresis=0)
    band = 0.025 * 1023                              # counts each side of 511.5
    seen = []
    for raw in range(1024):
        chip.channels[0] = raw
        knob.poll()
        seen.append(knob.position)
        if abs(raw - 511.5) <= band:
            assert knob.position == 0.5, raw          # exactly: the parameter's neutral value
    assert seen[0] == 0.0 and seen[-1] == 1.0        # the whole range is still reachable
    assert all(b >= a for a, b in zip(seen, seen[1:], strict=False))      # never backwards
    steps = [b - a for a, b in zip(seen, seen[1:], strict=False)]
    assert max(steps) < 1.1 / 1023                   # no jump at the detent's edges: ~1 count per count
    knob.close()


def test_centre_detent_picks_up_a_centred_parameter_anywhere_in_the_detent(chip_and_factory):
    chip, f = chip_and_factory
    knob = make(f, centre_detent=0.025, position=0.5)
    chip.channels[0] = 490                            # 2.1 % of the travel below the centre: beyond the
    knob.poll()                                       # 2 % pick-up window, but inside the detent
    assert knob.picked_up and knob.physical == 0.5
    knob.close()
    with pytest.raises(ValueError):
        make(f, centre_detent=0.3)
