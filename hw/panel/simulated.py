"""The panel on simulated hardware: the same device classes on gpiozero mock pins.

:class:`SimulatedPanel` is what ``masterbox demo`` runs and what the web UI's virtual panel
drives: turning a knob drives the encoder's mock pins through real quadrature edges (or
sets the mock MCP3008's channel voltage), pressing a button pulls its mock pin low, and the
LEDs and needles are read back from the mock pins. Nothing in the device classes knows it
is simulated.

gpiozero ships no mock MCP3008, so :class:`MockMCP3008` answers the chip's SPI protocol on
the mock SPI pins (a :class:`~gpiozero.pins.mock.MockSPIDevice`).
"""

from __future__ import annotations

import itertools
import random
import threading
import time

from gpiozero.pins.mock import (
    MockFactory,
    MockPin,
    MockPWMPin,
    MockSPIDevice,
    MockSPIInterface,
    MockSPIInterfaceShared,
)

from hw.panel.encoder import RotaryKnob
from hw.panel.panel import Panel
from hw.panel.pot import PotKnob
from hw.panel.spec import DEFAULT_PANEL, PanelSpec

# One clockwise detent, as (A, B) contact states (1 = closed = pin low): 0 -> 2 -> 3 -> 1 -> 0.
CW_DETENT = ((1, 0), (1, 1), (0, 1), (0, 0))
CCW_DETENT = ((0, 1), (1, 1), (1, 0), (0, 0))


HISTORY = 512   # mock pins record every state change; a demo runs for days, so keep the last few


def _trim(pin) -> None:
    if len(pin.states) > HISTORY:
        del pin.states[:-HISTORY // 2]


class SimulatedPin(MockPWMPin):
    """A PWM-capable mock pin whose record of past states (``states``) stays bounded."""

    def _change_state(self, value):
        changed = super()._change_state(value)
        if changed:
            _trim(self)
        return changed


class MockMCP3008(MockSPIDevice):
    """The slave side of an MCP3008 on mock pins.

    Set :attr:`channels` (eight raw counts, 0-1023) and any :class:`gpiozero.MCP3008` on
    the same pins reads them. The protocol: after the select line falls, a start bit (1),
    the single-ended bit and three channel bits; the chip then clocks out one sample bit,
    a null bit and ten result bits, most significant first.
    """

    def __init__(self, clock_pin=11, mosi_pin=10, miso_pin=9, select_pin=8, *, pin_factory=None):
        super().__init__(clock_pin, mosi_pin, miso_pin, select_pin, pin_factory=pin_factory)
        self.channels = [0] * 8
        self._phase = "start"

    def on_start(self):
        super().on_start()
        self._phase = "start"

    def on_clock(self):
        super().on_clock()
        _trim(self.clock_pin)     # 24 clock edges per reading: keep the record bounded

    def on_select(self):
        super().on_select()
        _trim(self.select_pin)

    def on_bit(self):
        # (the mock MOSI pin may be a PWM pin, whose state is a float)
        if self._phase == "start":
            if int(self.rx_buf[-1]):
                self._phase, self.rx_buf = "command", []
        elif self._phase == "command" and len(self.rx_buf) == 4:
            bits = [int(b) for b in self.rx_buf]
            single, channel = bits[0], bits[1] << 2 | bits[2] << 1 | bits[3]
            value = self.channels[channel] if single else max(self.channels[channel] - self.channels[channel ^ 1], 0)
            self.tx_word(int(value) & 0x3FF, 12)
            self._phase = "result"


class _PanelSPIInterfaceShared(MockSPIInterfaceShared):
    """gpiozero shares one SPI interface per (clock, select) pin pair, process-wide. Two
    simulated panels (one after another in tests) use the same pins on different factories,
    and a late close of the first one's interface (from the garbage collector) would drop
    the second one's from that registry. Keying by factory too keeps them apart."""

    @classmethod
    def _shared_key(cls, clock_pin, mosi_pin, miso_pin, select_pin, pin_factory):
        return (pin_factory.serial, clock_pin, select_pin)


class PanelMockFactory(MockFactory):
    """A :class:`~gpiozero.pins.mock.MockFactory` for a whole panel.

    New pins are :class:`SimulatedPin` (PWM-capable: needles need PWM), but a pin that
    already exists is handed out as it is. The stock factory refuses to mix pin classes,
    and the mock MCP3008 must own its SPI clock and select pins as
    :class:`~gpiozero.pins.mock.MockSPIClockPin` / ``MockSPISelectPin`` while
    :class:`gpiozero.MCP3008`'s software SPI asks for them with the default class.
    """

    _serials = itertools.count(1)

    def __init__(self):
        super().__init__(pin_class=SimulatedPin)
        self.serial = next(self._serials)

    def _get_spi_class(self, shared, hardware):
        return _PanelSPIInterfaceShared if shared else MockSPIInterface

    def pin(self, name, pin_class=None, **kwargs):
        if pin_class is None:
            for _header, info in self.board_info.find_pin(name):
                if info in self.pins:
                    return self.pins[info]
                break
        return super().pin(name, pin_class, **kwargs)


class SimulatedPanel(Panel):
    """A :class:`Panel` on its own mock pin factory, with hands to play it.

    :param PanelSpec spec: the panel to simulate (default: :data:`DEFAULT_PANEL`).

    :param bool resting_shafts: a potentiometer's shaft that no hand has turned yet (:meth:`turn`,
        :meth:`set_pot`) rests where its parameter is, and follows it (a recall) like a motorised
        pot; the first turn takes it over, and from then on pick-up works as on the box. The demo
        sets it, so its knobs answer the first click instead of waiting to be turned up from 0 to
        their parameters. Off (the default), every shaft starts at 0, as a box's pots may.

    Every method is safe to call from a web request thread; one lock keeps two requests
    from interleaving their edges on the same pins.
    """

    def __init__(self, spec: PanelSpec = DEFAULT_PANEL, *, resting_shafts: bool = False):
        factory = PanelMockFactory()
        self.factory = factory
        self.adc_chip = None
        self._hands = threading.RLock()   # also held while the panel loop polls (see set_knob)
        self.resting_shafts = resting_shafts
        self._turned: set[str] = set()    # pots a hand has turned
        if any(k.kind == "pot" for k in spec.knobs):
            a = spec.adc
            self.adc_chip = MockMCP3008(a.clock, a.mosi, a.miso, a.select, pin_factory=factory)
        super().__init__(spec, pin_factory=factory)

    def pin(self, number):
        """The mock pin behind a GPIO number (``drive_low``/``drive_high``/``state``)."""
        return self.factory.pin(number)

    # -- knobs ---------------------------------------------------------------------------
    def turn(self, name: str, detents: int, *, interval: float | None = None) -> float:
        """Turn knob ``name`` by ``detents`` (negative: counter-clockwise); returns its position.

        An encoder gets four quadrature edges per detent through its mock pins. With
        ``interval`` None (the default, what the web UI's virtual panel uses) the turn is a
        deliberate one: the edges come as fast as Python drives pins, but the knob's
        acceleration is held off, so N detents are N steps. With ``interval`` (seconds
        between detents; 0 for as fast as possible) the turn takes real time and the
        knob's acceleration applies as it would to a hand. A potentiometer's shaft moves so
        that its reading moves by ``detents`` hundredths of the travel (over a centre detent in
        one click).
        """
        knob = self.knobs[name]
        with self._hands:
            if isinstance(knob, PotKnob):   # the reading moves 1 %, out of a centre detent too
                base = knob.physical if knob.physical is not None else knob.position
                self.set_pot(name, knob.shaft_for(base + detents / 100.0))
                return knob.position
            a, b = knob.a.pin, knob.b.pin
            seq = CW_DETENT if detents > 0 else CCW_DETENT
            accelerator = knob.accelerator
            if interval is None:
                knob.accelerator = None
            try:
                for _ in range(abs(int(detents))):
                    for sa, sb in seq:
                        drive_contact(a, sa)
                        drive_contact(b, sb)
                    if interval:
                        time.sleep(interval)
            finally:
                knob.accelerator = accelerator
            return knob.position

    def push(self, name: str, down: bool = True) -> None:
        """Hold (``down=True``) or let go of an encoder's push switch (fine adjustment)."""
        knob = self.knobs[name]
        if not isinstance(knob, RotaryKnob) or not knob.has_push:
            raise ValueError(f"knob {name!r} has no push switch")
        with self._hands:
            drive_contact(knob.push.pin, 1 if down else 0)

    def set_pot(self, name: str, position: float) -> float:
        """Set potentiometer ``name`` to ``position`` (0..1) and read it as the panel loop would."""
        knob = self.knobs[name]
        if not isinstance(knob, PotKnob):
            raise ValueError(f"knob {name!r} is not a potentiometer")
        spec = self.spec.knob(name)
        with self._hands:
            self._turned.add(name)
            self.adc_chip.channels[spec.channel] = round(min(max(position, 0.0), 1.0) * PotKnob.FULL_SCALE)
            knob.poll()
            return knob.position

    def set_knob(self, name: str, position: float) -> None:
        """The parameter moved elsewhere; with :attr:`resting_shafts`, a pot no hand has turned
        goes there too. Under the hands' lock, which the panel loop's polls also take, so no
        poll reads the channel between the shaft's move and the knob's knowing of it."""
        with self._hands:
            super().set_knob(name, position)
            knob = self.knobs[name]
            if self.resting_shafts and isinstance(knob, PotKnob) and name not in self._turned:
                self.adc_chip.channels[self.spec.knob(name).channel] = knob.settle(position)

    def poll_pots(self) -> None:
        with self._hands:
            super().poll_pots()

    # -- buttons -------------------------------------------------------------------------
    def press(self, role: str) -> None:
        with self._hands:
            drive_contact(self.buttons[role].pin, 1)

    def release(self, role: str) -> None:
        with self._hands:
            drive_contact(self.buttons[role].pin, 0)

    def click(self, role: str) -> None:
        """A short press (just longer than the button's glitch filter)."""
        self.press(role)
        time.sleep(self.buttons[role].min_press + 0.01)
        self.release(role)

    def hold(self, role: str, seconds: float | None = None) -> None:
        """Press, keep pressed ``seconds`` (default: just past the hold time), release."""
        button = self.buttons[role]
        self.press(role)
        time.sleep(button.hold_time + 0.1 if seconds is None else seconds)
        self.release(role)

    def press_for(self, role: str, seconds: float | None = None) -> str | None:
        """:meth:`Panel.press_for` with real edges: the mock pin is held low that long (a
        short press: :meth:`click`), and the button's edge code decides what it was."""
        kind = self.buttons[role].classify(seconds)
        if seconds is None:
            self.click(role)
        else:
            self.hold(role, seconds)
        return kind

    def snapshot(self) -> dict:
        return {**super().snapshot(), "simulated": True}


def drive_contact(pin, closed: int) -> None:
    """Close (1) or open (0) the switch contact on mock ``pin``: panel switches close to
    ground against the internal pull-up, so closed drives the pin low."""
    if closed:
        pin.drive_low()
    else:
        pin.drive_high()


# -- a model of late edge callbacks, for measuring encoder decoders ------------------------
class LatentMockPin(MockPWMPin):
    """A mock pin whose edge callbacks are serviced late, as a busy Pi services them.

    gpiozero's mock pins call back synchronously, in order, with the exact level: no real
    backend does. With RPi.GPIO, for instance, a callback thread services edge events
    after some latency, one pending event per pin (two edges on one pin before it gets
    there become one), in its own order across pins, and reads the pin's level when it
    runs (:meth:`gpiozero.pins.local.LocalPiPin._call_when_changed`). This pin models
    exactly that: :meth:`drive_high`/:meth:`drive_low` change the level at once and only
    mark the pin pending; :meth:`LatentMockFactory.service` is the callback thread
    catching up.
    """

    def drive_high(self):
        assert self._function == "input"
        if self._change_state(True) and self._edges in ("both", "rising"):
            self.factory.pending.add(self)

    def drive_low(self):
        assert self._function == "input"
        if self._change_state(False) and self._edges in ("both", "falling"):
            self.factory.pending.add(self)


class LatentMockFactory(MockFactory):
    """A :class:`MockFactory` of :class:`LatentMockPin`; :meth:`service` delivers pending edges."""

    reads_level_in_callback = True   # as RPi.GPIO: see RotaryKnob's ``levels``

    def __init__(self):
        super().__init__(pin_class=LatentMockPin)
        self.pending: set = set()

    def service(self, order=None) -> None:
        """Run the pending callbacks, in ``order`` (a function sorting the pins) or pin order;
        each callback sees the level its pin has *now*."""
        pins = sorted(self.pending, key=lambda p: p.info.name)
        if order is not None:
            pins = order(pins)
        self.pending.clear()
        for pin in pins:
            if pin._when_changed is not None:
                pin._call_when_changed()


class QueuedMockPin(MockPWMPin):
    """A mock pin whose edge events queue up with the level at the edge, delivered late.

    This is how lgpio (gpiozero's default on current Raspberry Pi OS) behaves: its alert
    thread records every edge with its level and time, and the Python callbacks drain that
    queue in order whenever they get to run. :meth:`QueuedMockFactory.service` drains it.
    """

    def drive_high(self):
        assert self._function == "input"
        if self._change_state(True) and self._edges in ("both", "rising"):
            self.factory.queue.append((self, self._last_change, True))

    def drive_low(self):
        assert self._function == "input"
        if self._change_state(False) and self._edges in ("both", "falling"):
            self.factory.queue.append((self, self._last_change, False))


class QueuedMockFactory(MockFactory):
    """A :class:`MockFactory` of :class:`QueuedMockPin`; :meth:`service` delivers queued edges in order."""

    def __init__(self):
        super().__init__(pin_class=QueuedMockPin)
        self.queue: list = []

    def service(self, order=None) -> None:
        events, self.queue = self.queue, []
        for pin, ticks, state in events:
            if pin._when_changed is not None:
                super(MockPin, pin)._call_when_changed(ticks, state)


def quadrature_events(detents, *, bounce: int = 0, rng=None):
    """Contact events for turning an encoder: a list of (contact, closed) with contact 0 = A, 1 = B.

    ``detents`` is a sequence of +1 / -1 (one entry per detent). ``bounce`` > 0 adds up to
    that many extra close/open glitches on the changing contact before each transition
    settles (``rng``: a :class:`random.Random` choosing how many).
    """
    events = []
    state = (0, 0)
    for d in detents:
        for nxt in (CW_DETENT if d > 0 else CCW_DETENT):
            pin = 0 if nxt[0] != state[0] else 1
            new, old = nxt[pin], state[pin]
            for _ in range(rng.randint(0, bounce) if bounce else 0):
                events += [(pin, new), (pin, old)]
            events.append((pin, new))
            state = nxt
    return events


EDGE_MODELS = {
    "sync": MockFactory,            # gpiozero's mock pins: every edge at once, in order, exact level
    "queued": QueuedMockFactory,    # lgpio: edges queued with their levels, callbacks late
    "coalesced": LatentMockFactory,  # RPi.GPIO: one pending event per pin, level read late
}


def turning_session(rng, runs: int = 6) -> list[int]:
    """A person turning a knob: ``runs`` runs of 3-12 detents one way or the other."""
    out: list[int] = []
    for _ in range(runs):
        d = rng.choice((1, -1))
        out += [d] * rng.randint(3, 12)
    return out


def count_detents(decoder: str, model: str, events, *, p_late: float = 0.0, seed: int = 0) -> int:
    """Drive ``events`` (see :func:`quadrature_events`) through mock pins of ``model`` into
    ``decoder`` ("ours": :class:`RotaryKnob`, "stock": :class:`gpiozero.RotaryEncoder`);
    returns the detents it counted. ``p_late``: after each edge, the chance that the
    backend's callback thread has not caught up yet (it does at a later edge)."""
    from gpiozero import RotaryEncoder

    factory = EDGE_MODELS[model]()
    rng = random.Random(seed)
    if decoder == "stock":
        dev = RotaryEncoder(5, 6, max_steps=0, pin_factory=factory)
    else:
        dev = RotaryKnob(5, 6, pin_factory=factory)
    pins = (dev.a.pin, dev.b.pin)

    def any_order(ps):
        return rng.sample(ps, len(ps))

    try:
        for pin, closed in events:
            drive_contact(pins[pin], closed)
            if model != "sync" and rng.random() >= p_late:
                factory.service(any_order)
        if model != "sync":
            factory.service(any_order)
        return dev.steps
    finally:
        dev.close()


def miscount(decoder: str, model: str, *, bounce: int, p_late: float, sessions: int = 20) -> tuple[int, int]:
    """(detents miscounted, detents turned) over ``sessions`` seeded turning sessions."""
    err = total = 0
    for t in range(sessions):
        rng = random.Random(t)
        detents = turning_session(rng)
        events = quadrature_events(detents, bounce=bounce, rng=rng)
        err += abs(count_detents(decoder, model, events, p_late=p_late, seed=1000 + t) - sum(detents))
        total += len(detents)
    return err, total
