"""Encoder decoding: exact on clean, fast and bouncy edge sequences, better than gpiozero's
stock RotaryEncoder where the backend loses transitions; acceleration; push for fine."""

from __future__ import annotations

import random
import time

import pytest
from gpiozero import RotaryEncoder
from gpiozero.pins.mock import MockFactory

from hw.panel.encoder import QUARTER_STEPS, Accelerator, QuadratureDecoder, RotaryKnob
from hw.panel.simulated import (
    CCW_DETENT,
    CW_DETENT,
    LatentMockFactory,
    count_detents,
    drive_contact,
    miscount,
    quadrature_events,
)


def score(kind: str, model: str, *, bounce: int, p_late: float) -> tuple[int, int]:
    return miscount("ours" if kind == "knob" else "stock", model, bounce=bounce, p_late=p_late)


def replay(kind: str, model: str, events, *, p_late: float = 0.0, seed: int = 0) -> int:
    return count_detents("ours" if kind == "knob" else "stock", model, events, p_late=p_late, seed=seed)


# -- the decoder alone ---------------------------------------------------------------------
def test_table_is_full_quadrature():
    cw = [0, 2, 3, 1, 0]
    for a, b in zip(cw, cw[1:], strict=False):
        assert QUARTER_STEPS[a << 2 | b] == 1
        assert QUARTER_STEPS[b << 2 | a] == -1
    assert all(QUARTER_STEPS[s << 2 | s] == 0 for s in range(4))


def feed(dec: QuadratureDecoder, states) -> int:
    return sum(dec.update(s >> 1, s & 1) for s in states)


def test_decoder_counts_detents_and_direction():
    dec = QuadratureDecoder()
    assert feed(dec, [2, 3, 1, 0] * 5) == 5
    assert feed(dec, [1, 3, 2, 0] * 7) == -7


def test_bounce_nets_to_zero_and_partial_turns_come_back():
    dec = QuadratureDecoder()
    # a quarter of a detent and back, many times: nothing
    assert feed(dec, [2, 0] * 10 + [1, 0] * 10) == 0
    # half a detent and back: nothing
    assert feed(dec, [2, 3, 2, 0]) == 0
    # a detent whose every transition bounces
    assert feed(dec, [2, 0, 2, 3, 2, 3, 1, 3, 1, 0]) == 1


def test_missed_transition_counts_in_the_turning_direction():
    dec = QuadratureDecoder()
    assert feed(dec, [2, 3, 1, 0]) == 1           # establishes clockwise
    assert feed(dec, [2, 1, 0]) == 1              # 2 -> 1 skipped 3
    assert feed(dec, [3, 1, 0]) == 1              # 0 -> 3 skipped 2
    assert feed(dec, [2, 3, 0]) == 1              # 3 -> 0 skipped 1
    assert dec.illegal == 3 and dec.guessed == 3
    dec = QuadratureDecoder()
    assert feed(dec, [1, 3, 2, 0]) == -1
    assert feed(dec, [2, 0]) == 0                 # a bounce "the other way" does not flip direction...
    assert feed(dec, [1, 2, 0]) == -1             # ...so a jump right after it still counts counter-clockwise


def test_half_and_single_transition_encoders():
    dec = QuadratureDecoder(2)
    assert feed(dec, [2, 3, 1, 0, 2, 3]) == 3
    dec = QuadratureDecoder(1)
    assert feed(dec, [2, 3, 1, 0]) == 4
    with pytest.raises(ValueError):
        QuadratureDecoder(3)


# -- on mock pins: both decoders on the same edge sequences ----------------------------------
@pytest.mark.parametrize("bounce", [0, 3])
def test_fast_and_bouncy_sequences_in_order_are_exact(bounce):
    """Edges delivered in order with their levels, as fast as Python drives pins (~10 us
    apart): nothing lost, nothing reversed. gpiozero's stock decoder is exact here too."""
    err, total = score("knob", "sync", bounce=bounce, p_late=0.0)
    assert err == 0 and total > 500
    assert score("stock", "sync", bounce=bounce, p_late=0.0)[0] == 0


@pytest.mark.parametrize("bounce", [0, 2])
def test_late_queued_callbacks_are_exact(bounce):
    """lgpio's model: every edge queued with its level, the callbacks running far behind."""
    err, total = score("knob", "queued", bounce=bounce, p_late=0.9)
    assert err == 0 and total > 500


def test_reversals_at_speed_are_exact():
    detents = [1] * 7 + [-1] * 3 + [1] * 2 + [-1] * 9
    events = quadrature_events(detents, bounce=2, rng=random.Random(5))
    assert replay("knob", "sync", events) == sum(detents)
    assert replay("knob", "queued", events, p_late=0.8) == sum(detents)


def test_single_missed_transitions_are_recovered():
    """A fast clockwise turn on an RPi.GPIO-like backend where, in each detent, one transition
    (a different one each time) is serviced only after the next one has happened too: every
    detent still counts, forwards. The stock decoder loses or reverses some of them."""
    counts = {}
    for kind in ("knob", "stock"):
        f = LatentMockFactory()
        dev = RotaryKnob(5, 6, pin_factory=f) if kind == "knob" else RotaryEncoder(5, 6, max_steps=0, pin_factory=f)
        pins = (dev.a.pin, dev.b.pin)
        for a, b in CW_DETENT:           # one clean detent first
            drive_contact(pins[0], a), f.service(), drive_contact(pins[1], b), f.service()
        for n in range(12):
            events = quadrature_events([1], rng=None)
            for i, (pin, closed) in enumerate(events):
                drive_contact(pins[pin], closed)
                if i != n % 4:           # this transition's callback comes late
                    f.service(lambda ps, n=n: ps[::-1] if n % 3 else ps)
            f.service()
        counts[kind] = dev.steps
        dev.close()
    print("single missed transition per detent, 13 detents turned:", counts)
    assert counts["knob"] == 13
    assert counts["stock"] != 13


def test_how_levels_are_taken_follows_the_backend():
    """Reported levels on queueing backends, both pins read on RPi.GPIO-like ones; reading
    both pins on a queueing backend would see the future and miscount, so it matters."""
    from hw.panel.simulated import QueuedMockFactory

    assert RotaryKnob(5, 6, pin_factory=QueuedMockFactory()).levels == "reported"
    assert RotaryKnob(5, 6, pin_factory=LatentMockFactory()).levels == "read"
    rng = random.Random(3)
    detents = [1] * 40
    events = quadrature_events(detents, rng=rng)
    results = {}
    for levels in ("reported", "read"):
        f = QueuedMockFactory()
        knob = RotaryKnob(5, 6, levels=levels, pin_factory=f)
        for i, (pin, closed) in enumerate(events):
            drive_contact((knob.a.pin, knob.b.pin)[pin], closed)
            if i % 3 == 2:
                f.service()
        f.service()
        results[levels] = knob.steps
        knob.close()
    assert results["reported"] == 40 and results["read"] != 40


def test_coalesced_callbacks_lose_fewer_detents_than_stock():
    """RPi.GPIO's model: one pending event per pin, level read when the callback runs, pins
    serviced in any order. Information is really lost here, so no decoder is exact; ours
    must do clearly better than the stock one (figures: docs/panel.md)."""
    for bounce in (0, 2):
        ours, total = score("knob", "coalesced", bounce=bounce, p_late=0.1)
        stock, _ = score("stock", "coalesced", bounce=bounce, p_late=0.1)
        print(f"coalesced, bounce {bounce}, 10% late: ours {ours}/{total} detents wrong, stock {stock}/{total}")
        assert ours * 2 < stock


# -- acceleration and fine --------------------------------------------------------------------
def test_accelerator_curve():
    acc = Accelerator(max_multiplier=8, slow_rate=12, fast_rate=60)
    t = 0.0
    assert acc.multiplier(1, t) == 1.0
    for _ in range(5):                  # 5 detents/s: exact
        t += 0.2
        assert acc.multiplier(1, t) == 1.0
    mults = []
    for _ in range(20):                 # 200 detents/s: ramps to the maximum
        t += 0.005
        mults.append(acc.multiplier(1, t))
    assert mults == sorted(mults) and mults[-1] == pytest.approx(8.0)
    t += 0.5                            # a pause starts over
    assert acc.multiplier(1, t) == 1.0


def drive_detents(knob: RotaryKnob, n: int, interval: float) -> None:
    for _ in range(abs(n)):
        for a, b in (CW_DETENT if n > 0 else CCW_DETENT):
            drive_contact(knob.a.pin, a)
            drive_contact(knob.b.pin, b)
        if interval:
            time.sleep(interval)


def test_acceleration_on_mock_pins_with_real_time():
    f = MockFactory()
    knob = RotaryKnob(5, 6, 13, detents=100, accelerator=Accelerator(), pin_factory=f)
    drive_detents(knob, 4, 0.12)        # slow: 8 detents/s
    assert knob.position == pytest.approx(0.04)
    time.sleep(0.25)
    before = knob.position
    drive_detents(knob, 20, 0.002)      # a flick: hundreds of detents/s
    assert knob.steps == 24
    assert knob.position - before > 0.2 + 0.5 * 0.2   # well over 1x
    knob.close()


def test_push_for_fine_adjustment():
    f = MockFactory()
    knob = RotaryKnob(5, 6, 13, detents=100, fine=10, accelerator=Accelerator(), pin_factory=f)
    knob.set_position(0.5)
    drive_contact(knob.push.pin, 1)
    drive_detents(knob, 10, 0)          # fast, but fine: no acceleration, 1/1000 each
    assert knob.position == pytest.approx(0.51)
    drive_contact(knob.push.pin, 0)
    knob.close()


def test_position_clamps_and_reports():
    f = MockFactory()
    seen = []
    knob = RotaryKnob(5, 6, detents=4, pin_factory=f)
    knob.when_changed = seen.append
    drive_detents(knob, 6, 0)
    assert knob.position == 1.0 and seen == [0.25, 0.5, 0.75, 1.0]
    drive_detents(knob, -1, 0)
    assert seen[-1] == 0.75
    knob.close()
