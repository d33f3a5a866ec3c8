"""Rotary encoders that keep their count at speed and through contact bounce, with
velocity acceleration and push-for-fine.

gpiozero's :class:`~gpiozero.RotaryEncoder` follows a path through a small state machine,
rebuilding the two-bit state from the level each edge callback reports for one pin and the
level it *remembers* for the other. Given every edge in order with its level (gpiozero's
mock pins; lgpio, which queues each edge with its level) that is exact, however fast and
bouncy the edges, and so is this module: measured, not assumed. Edge callbacks run in a
thread, though, and backends that only read the level when the callback runs and service
pins in their own order (RPi.GPIO; one pending event per pin, so two quick edges become
one) lose and reorder transitions when a knob is turned fast. Then the path machine falls
back to ``idle`` and drops the detent, or walks the wrong path and counts it backwards
(gpiozero issue #1062). ``tests/panel/test_encoder.py`` and ``bench/bench_panel.py`` run
both decoders on the same edge sequences under models of those backends
(:mod:`hw.panel.simulated`); ``docs/panel.md`` has the figures: where transitions are
really lost no decoder can be exact, and this one miscounts 3-4 times fewer detents.

:class:`QuadratureDecoder` is the fix, kept free of gpiozero so it can be tested alone:

* With backends that queue each edge with its level (lgpio, gpiozero's default on current
  Raspberry Pi OS; pigpio; the native and mock factories) it is fed the level each callback
  *reports* for its pin and the level last reported for the other: a fast turn replays
  exactly, however late the callback thread runs. With RPi.GPIO, which reads the level
  only when a callback runs and services pins in its own order, it reads *both* pins at
  every callback instead: a consistent picture, and a missed transition shows as a jump
  rather than as a step the wrong way.
* It is a full 16-entry state table (previous state x new state): each legal transition
  is a quarter step forward or back, so contact bounce (a quarter step and its undo) nets
  to zero instead of confusing a path-following state machine.
* A jump across two quarter steps (both pins changed between two looks: a transition was
  missed) is counted as two quarter steps the way the knob is turning: a knob turned fast
  enough to lose a transition keeps turning the same way. That way only changes after two
  legal transitions in a row the other way, so a bounce (a transition and its undo) never
  flips it.
* Detents are counted only when the encoder sits in a rest position, by rounding the
  quarter steps gathered since the last rest position; the count re-synchronises at
  every detent, so an error can never accumulate.

:class:`Accelerator` turns detents per second into a step multiplier, and
:class:`RotaryKnob` puts the two together with the push switch (hold it and turn for fine
adjustment) as a gpiozero composite device whose output is a 0..1 position.
"""

from __future__ import annotations

from threading import RLock

from gpiozero import Button, CompositeDevice, InputDevice

# Quarter-step table. The two-bit state is ``A << 1 | B`` with 1 meaning "contact closed"
# (the pin pulled low). Turning clockwise walks 0 -> 2 -> 3 -> 1 -> 0 (gpiozero's
# convention, so a knob wired for gpiozero turns the same way here).
_CW = {(0, 2), (2, 3), (3, 1), (1, 0)}
_ILLEGAL = 99
QUARTER_STEPS: tuple[int, ...] = tuple(
    0 if prev == cur else
    1 if (prev, cur) in _CW else
    -1 if (cur, prev) in _CW else
    _ILLEGAL
    for prev in range(4) for cur in range(4)
)

# Rest (detent) states for each supported number of transitions per detent.
_REST_STATES = {4: (0,), 2: (0, 3), 1: (0, 1, 2, 3)}


class QuadratureDecoder:
    """Turns snapshots of the A and B contacts into whole detents.

    :param int transitions_per_detent:
        4 for the common encoder that makes a full quadrature cycle between two detents
        (Alps EC11, Bourns PEC11 in most variants), 2 for half-cycle encoders that also
        rest with both contacts closed, 1 for encoders that count every transition.
    :param int rest_state:
        The two-bit state a full-cycle encoder rests in (0: both contacts open).

    Call :meth:`update` with the current contact levels after every edge on either pin; it
    returns the detents completed by this change (negative: counter-clockwise). The counts
    :attr:`illegal` (two-step jumps seen) and :attr:`guessed` (jumps resolved by the last
    direction) say how hard the hardware is being pushed.
    """

    def __init__(self, transitions_per_detent: int = 4, rest_state: int = 0):
        if transitions_per_detent not in _REST_STATES:
            raise ValueError("transitions_per_detent must be 1, 2 or 4")
        self.per_detent = transitions_per_detent
        self.rest_states = (rest_state,) if transitions_per_detent == 4 else _REST_STATES[transitions_per_detent]
        self.state = rest_state
        self.quarters = 0      # quarter steps gathered since the last rest position
        self.direction = 0     # +1 / -1: the way the knob is turning (see _track_direction)
        self._against = 0
        self.jumps = 0         # jumps seen before any direction was known
        self.illegal = 0
        self.guessed = 0

    def reset(self, state: int) -> None:
        """Adopt ``state`` as the current snapshot, forgetting partial movement."""
        self.state = state
        self.quarters = 0
        self.jumps = 0

    def _track_direction(self, step: int) -> None:
        # The way the knob is turning changes only after two legal transitions in a row
        # the other way: a bounce is one transition and its undo, and must not flip it.
        if not self.direction:
            self.direction = step
        elif step == self.direction:
            self._against = 0
        else:
            self._against += 1
            if self._against >= 2:
                self.direction, self._against = step, 0

    def update(self, a: int, b: int) -> int:
        cur = (a << 1) | b
        prev = self.state
        if cur == prev:
            return 0
        step = QUARTER_STEPS[(prev << 2) | cur]
        self.state = cur
        if step == _ILLEGAL:
            # Both contacts changed since the last look: a transition was missed. Count it
            # as two quarter steps the way the knob is turning (a knob turned fast enough
            # to lose a transition keeps turning the same way). Before any legal transition
            # there is no such way yet: the first legal one decides.
            self.illegal += 1
            if self.direction:
                self.guessed += 1
                self.quarters += 2 * self.direction
            else:
                self.jumps += 1
        else:
            self._track_direction(step)
            self.quarters += step * (1 + 2 * self.jumps)
            self.guessed += self.jumps
            self.jumps = 0
        if cur not in self.rest_states:
            return 0
        q, self.quarters = self.quarters, 0
        # Round half away from zero: at a rest position, half a detent's worth of quarter
        # steps in one direction means the knob moved one detent and some transitions were
        # lost; less than half is bounce that came back.
        half = self.per_detent // 2
        n = (abs(q) + half) // self.per_detent if self.per_detent > 1 else abs(q)
        return n if q > 0 else -n


class Accelerator:
    """Velocity acceleration: fast turns cover more of the range per detent.

    :param float max_multiplier:
        The step multiplier at or above ``fast_rate``.
    :param float slow_rate:
        Detents per second below which every detent is exactly one step. Slow, deliberate
        turns must stay exact, so the curve starts flat.
    :param float fast_rate:
        Detents per second at which the multiplier reaches ``max_multiplier``.
    :param float gap:
        A pause longer than this (seconds) restarts from a multiplier of 1.

    The rate is smoothed over a few detents so one quick flick does not leap.
    """

    def __init__(self, max_multiplier: float = 8.0, slow_rate: float = 12.0, fast_rate: float = 60.0,
                 gap: float = 0.2):
        if max_multiplier < 1 or fast_rate <= slow_rate:
            raise ValueError("need max_multiplier >= 1 and fast_rate > slow_rate")
        self.max_multiplier = float(max_multiplier)
        self.slow_rate = float(slow_rate)
        self.fast_rate = float(fast_rate)
        self.gap = float(gap)
        self.rate = 0.0
        self._last = None

    def reset(self) -> None:
        self.rate = 0.0
        self._last = None

    def multiplier(self, detents: int, now: float) -> float:
        """Multiplier for ``detents`` completed at time ``now`` (seconds)."""
        last, self._last = self._last, now
        if last is None or now - last > self.gap:
            self.rate = 0.0
            return 1.0
        instant = abs(detents) / max(now - last, 1e-4)
        self.rate += 0.5 * (instant - self.rate)
        x = (self.rate - self.slow_rate) / (self.fast_rate - self.slow_rate)
        return 1.0 + (self.max_multiplier - 1.0) * min(max(x, 0.0), 1.0)


class RotaryKnob(CompositeDevice):
    """A rotary encoder with optional push switch, presented as a 0..1 knob position.

    :param a, b: GPIO pins of the encoder's A and B contacts (common to ground).
    :param push: GPIO pin of the push switch, or :data:`None`.
    :param int detents:
        Detents for the whole travel at normal speed (0 to 1). 96 gives 0.5 dB steps on a
        48 dB trim range.
    :param int fine:
        Divisor of the step while the push switch is held (acceleration is off then).
    :param Accelerator accelerator: or :data:`None` for no acceleration (also settable as
        :attr:`accelerator`, with :attr:`detents`, e.g. for a knob that steps through choices).
    :param int transitions_per_detent: see :class:`QuadratureDecoder`.
    :param str levels:
        ``"reported"`` (the level each callback reports), ``"read"`` (read both pins at
        every callback) or ``"auto"``: ``"read"`` for factories that only read the level
        when the callback runs (RPi.GPIO, or any factory with a true
        ``reads_level_in_callback`` attribute), ``"reported"`` otherwise.

    :attr:`when_changed` is called with the new position (from the pin callback thread,
    so keep it quick: the panel controller only queues it). :meth:`set_position` moves
    the knob's idea of where it is (after a preset recall) without calling it.
    """

    def __init__(self, a, b, push=None, *, detents: int = 96, fine: int = 10, accelerator=None,
                 transitions_per_detent: int = 4, position: float = 0.0, levels: str = "auto",
                 pin_factory=None):
        if levels not in ("auto", "reported", "read"):
            raise ValueError("levels must be 'auto', 'reported' or 'read'")
        self._lock = RLock()
        self._decoder = QuadratureDecoder(transitions_per_detent)
        self.accelerator = accelerator
        self.detents = int(detents)
        self.fine = max(int(fine), 1)
        self._position = min(max(float(position), 0.0), 1.0)
        self.when_changed = None
        self.steps = 0  # net detents ever counted (for tests and diagnostics)
        devices = {
            "a": InputDevice(a, pull_up=True, pin_factory=pin_factory),
            "b": InputDevice(b, pull_up=True, pin_factory=pin_factory),
        }
        order = ("a", "b")
        if push is not None:
            devices["push"] = Button(push, pull_up=True, pin_factory=pin_factory)
            order = ("a", "b", "push")
        super().__init__(_order=order, pin_factory=pin_factory, **devices)
        if levels == "auto":
            f = self.pin_factory
            late = getattr(f, "reads_level_in_callback", type(f).__name__ == "RPiGPIOFactory")
            levels = "read" if late else "reported"
        self.levels = levels
        self._levels = [int(self.a.is_active), int(self.b.is_active)]
        self._decoder.reset(self._levels[0] << 1 | self._levels[1])
        self._t0 = self.pin_factory.ticks()
        for dev in (self.a, self.b):
            dev.pin.edges = "both"
        # bound methods: gpiozero keeps only weak references to pin callbacks
        self.a.pin.when_changed = self._a_changed
        self.b.pin.when_changed = self._b_changed

    @property
    def decoder(self) -> QuadratureDecoder:
        return self._decoder

    @property
    def position(self) -> float:
        with self._lock:
            return self._position

    @property
    def fine_active(self) -> bool:
        return self.has_push and self.push.is_pressed

    @property
    def has_push(self) -> bool:
        return "push" in self.namedtuple._fields

    def set_position(self, position: float) -> None:
        with self._lock:
            self._position = min(max(float(position), 0.0), 1.0)

    # pulled up: a closed contact reads low
    def _a_changed(self, ticks, state):
        self._edge(0, 0 if state else 1, ticks)

    def _b_changed(self, ticks, state):
        self._edge(1, 0 if state else 1, ticks)

    def _edge(self, index, closed, ticks):
        # The encoder as the event stream last described it (or, for backends that read
        # levels late anyway, as it is now); the decoder's table copes with the rest.
        with self._lock:
            if self.levels == "read":
                self._levels = [int(self.a.is_active), int(self.b.is_active)]
            else:
                self._levels[index] = closed
            n = self._decoder.update(self._levels[0], self._levels[1])
        if n:
            # Edge times are the factory's opaque ticks; the accelerator wants seconds.
            self.turn(n, now=self.pin_factory.ticks_diff(ticks, self._t0))

    def turn(self, detents: int, *, now: float | None = None) -> float:
        """The knob turned ``detents`` detents (negative: counter-clockwise); returns the position.

        The one place a detent moves the knob: the decoded GPIO edges come here, and so does
        the web UI's virtual panel on a physical panel, so a web turn steps exactly as a hand
        does (the same detents for the whole travel, push-for-fine while the push switch is
        held). ``now`` (seconds, on the edges' clock) feeds the accelerator; :data:`None` is a
        deliberate turn of exactly ``detents`` steps, without acceleration.
        """
        n = int(detents)
        if not n:
            return self.position
        with self._lock:
            self.steps += n
            if self.fine_active:
                delta = n / (self.detents * self.fine)
            else:
                mult = self.accelerator.multiplier(n, now) if self.accelerator and now is not None else 1.0
                delta = n * mult / self.detents
            new = min(max(self._position + delta, 0.0), 1.0)
            if new == self._position:
                return new
            self._position = new
            callback = self.when_changed
        if callback is not None:
            callback(new)
        return new
