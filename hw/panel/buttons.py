"""Buttons that tell a short press from a long one, without blocking anything.

gpiozero's :class:`~gpiozero.Button` already times holds in its own thread
(:attr:`~gpiozero.Button.hold_time`, :attr:`~gpiozero.Button.when_held`). A panel button
needs one more rule on top: a press is *either* short *or* long, never both. So
:class:`PanelButton` fires :attr:`when_long_press` the moment the hold time is reached
(the person gets feedback while still holding), and :attr:`when_short_press` on release
only if the long press did not fire. Presses shorter than :attr:`min_press` are contact
glitches and fire nothing.

Handlers run in gpiozero's callback threads; the panel controller only queues work from
them, so a slow action (saving a preset, running the shutdown command) never delays the
next button or a knob.
"""

from __future__ import annotations

from gpiozero import Button


class PanelButton(Button):
    """A momentary push button (to ground, internal pull-up) with short and long presses.

    :param pin: GPIO pin.
    :param float hold_time: seconds held before :attr:`when_long_press` fires.
    :param float min_press: presses shorter than this (seconds) are ignored as bounce.

    :attr:`when_short_press` and :attr:`when_long_press` take no arguments.
    """

    def __init__(self, pin, *, hold_time: float = 1.0, min_press: float = 0.02, pull_up: bool = True,
                 bounce_time=None, pin_factory=None):
        super().__init__(pin, pull_up=pull_up, bounce_time=bounce_time, hold_time=hold_time,
                         pin_factory=pin_factory)
        self.min_press = float(min_press)
        self.when_short_press = None
        self.when_long_press = None
        self._pressed_at = None
        self._long_fired = False
        self.press_started = None   # ticks when the press being reported began (None: before we existed)

    def _fire_activated(self):
        self.press_started = self._pressed_at = self.pin_factory.ticks()
        self._long_fired = False
        super()._fire_activated()

    def _fire_held(self):
        super()._fire_held()
        if not self._long_fired:
            self._long_fired = True
            if self.when_long_press is not None:
                self.when_long_press()

    def _fire_deactivated(self):
        pressed_at, self._pressed_at = self._pressed_at, None
        self.press_started = pressed_at
        was_long = self._long_fired
        super()._fire_deactivated()
        if was_long or pressed_at is None:
            return
        if self.classify(self.pin_factory.ticks_diff(self.pin_factory.ticks(), pressed_at)) != "short":
            return
        if self.when_short_press is not None:
            self.when_short_press()

    def classify(self, seconds: float | None) -> str | None:
        """What a press of ``seconds`` is: ``"long"`` (held to the hold time), ``"short"``,
        or :data:`None` (shorter than :attr:`min_press`: a contact glitch). :data:`None`
        seconds is a plain short press. The edges (on release) and the web UI's virtual
        panel (:meth:`hw.panel.Panel.press_for`) both decide here."""
        if seconds is None:
            return "short"
        if seconds >= self.hold_time:
            return "long"
        return "short" if seconds >= self.min_press else None
