"""Potentiometer knobs read through an MCP3008 ADC, with hysteresis and pick-up.

A potentiometer says where it *physically* is; the box's state says where the parameter
*is*. After a preset recall (from the panel or from the web) the two disagree, and a naive
pot would yank the parameter back to the knob the moment anything nudged it. So a pot is
either *picked up* (its movements drive the parameter) or *waiting*: it does nothing
until the person turns it through (or to within :attr:`PotKnob.pickup_window` of) the
parameter's value, and then takes over smoothly ("soft takeover"). :attr:`pickup_direction`
tells the UI which way to turn.

ADC readings are noisy by a count or two, so a reading only counts as a movement when it
leaves a band of :attr:`hysteresis` counts around the last accepted reading; a knob left
alone never jitters its parameter. The two ends of the travel snap to exactly 0 and 1 so
the whole range stays reachable despite the band.

A knob whose centre is a neutral setting (tone, trim, width) can have a *centre detent*:
:attr:`centre_detent` of the travel each side of the centre reads as exactly the centre, and the
rest of each half is stretched to keep both ends where they were. A pot left "at zero" then really
is 0 dB (and the stage behind it is bypassed bit for bit), not a count or two away from it.
"""

from __future__ import annotations

import math
from threading import RLock

from gpiozero import MCP3008, CompositeDevice


class PotKnob(CompositeDevice):
    """One potentiometer on one MCP3008 channel.

    :param int channel: MCP3008 input (0-7).
    :param int hysteresis: counts (of 1023) a reading must move to count as a movement.
    :param float pickup_window:
        How close (0..1 of the travel) the knob must come to the parameter to pick it up;
        passing through the value picks it up whatever the speed.
    :param str takeover:
        ``"pickup"`` (soft takeover, the default) or ``"jump"`` (the knob always drives
        the parameter, even if that makes it leap).
    :param float centre_detent:
        Fraction of the travel (0..0.2) each side of the centre that reads as exactly 0.5.
    :param spi: keyword arguments for :class:`gpiozero.MCP3008` naming the SPI pins
        (``clock_pin``, ``mosi_pin``, ``miso_pin``, ``select_pin``); the hardware SPI
        bus is used when they are the bus's pins.

    The panel loop calls :meth:`poll` a few dozen times a second; :attr:`when_changed` is
    then called with the new position (keep it quick).
    """

    FULL_SCALE = 1023

    def __init__(self, channel: int, *, hysteresis: int = 3, pickup_window: float = 0.02,
                 takeover: str = "pickup", position: float = 0.0, centre_detent: float = 0.0,
                 spi: dict | None = None, pin_factory=None):
        if takeover not in ("pickup", "jump"):
            raise ValueError("takeover must be 'pickup' or 'jump'")
        if not 0.0 <= centre_detent <= 0.2:
            raise ValueError("centre_detent must be within 0..0.2")
        self.centre_detent = float(centre_detent)
        self._lock = RLock()
        self.hysteresis = int(hysteresis)
        self.pickup_window = float(pickup_window)
        self.takeover = takeover
        self._raw = None          # last accepted reading (after hysteresis)
        self._physical = None     # where the knob is, 0..1 (None until first read)
        self._position = min(max(float(position), 0.0), 1.0)   # the parameter's position
        self._picked = takeover == "jump"
        self.when_changed = None
        super().__init__(adc=MCP3008(channel=channel, pin_factory=pin_factory, **(spi or {})),
                         pin_factory=pin_factory)

    @property
    def position(self) -> float:
        """The parameter's position as the knob knows it (0..1)."""
        with self._lock:
            return self._position

    @property
    def physical(self) -> float | None:
        """Where the knob physically points (0..1), after hysteresis."""
        with self._lock:
            return self._physical

    @property
    def picked_up(self) -> bool:
        with self._lock:
            return self._picked

    @property
    def pickup_direction(self) -> int:
        """+1: turn clockwise to pick up; -1: counter-clockwise; 0: picked up (or unknown)."""
        with self._lock:
            if self._picked or self._physical is None:
                return 0
            return 1 if self._position > self._physical else -1

    def set_position(self, position: float) -> None:
        """The parameter moved elsewhere (preset recall, web UI): follow it. Pick-up is
        re-armed unless the knob already points at the new value."""
        with self._lock:
            self._position = min(max(float(position), 0.0), 1.0)
            if self.takeover == "pickup":
                # picked up exactly when the knob points (near enough) at the new value
                self._picked = self._physical is not None and \
                    abs(self._physical - self._position) <= self.pickup_window

    def turn(self, detents: int, per_detent: float = 0.01) -> float:
        """Move the parameter by ``detents`` hundredths of the travel from somewhere other than
        the knob itself (the web UI's virtual panel on a physical panel); returns the position.

        A potentiometer's shaft cannot be turned from a browser: the parameter moves (and
        :attr:`when_changed` reports it, as a turn of the knob would), while the shaft stays
        where it is, so pick-up re-arms exactly as after a preset recall and the next turn by
        hand takes over without a jump.
        """
        with self._lock:
            new = min(max(self._position + int(detents) * per_detent, 0.0), 1.0)
            if new == self._position:
                return new
            self.set_position(new)
            callback = self.when_changed
        if callback is not None:
            callback(new)
        return new

    def settle(self, position: float) -> int:
        """The shaft has been put where the parameter is (a simulated shaft that no hand has
        turned yet): take that as read, picked up, without reporting a move; returns the ADC
        count the shaft now reads (put it on the channel before the next :meth:`poll`).

        Reading it through :meth:`poll` instead would report the count's rounding of the
        value as a turn, and so move the parameter by up to half a count."""
        raw = round(self.shaft_for(position) * self.FULL_SCALE)
        with self._lock:
            self._raw = raw
            self._physical = self._travel(raw / self.FULL_SCALE)
            self._picked = True
        return raw

    def shaft_for(self, position: float) -> float:
        """Where on the shaft (0..1) the knob reads ``position``: the inverse of the centre detent's
        stretch (the detent's middle for the centre itself)."""
        x = min(max(float(position), 0.0), 1.0)
        d = self.centre_detent
        if d <= 0.0 or x == 0.5:
            return x
        return 0.5 + math.copysign(abs(x - 0.5) * (0.5 - d) / 0.5 + d, x - 0.5)

    def _travel(self, x: float) -> float:
        """Where the shaft's reading ``x`` (0..1) puts the knob, after the centre detent."""
        d = self.centre_detent
        off = x - 0.5
        if d <= 0.0:
            return x
        if abs(off) <= d:
            return 0.5
        return 0.5 + math.copysign((abs(off) - d) * 0.5 / (0.5 - d), off)

    def poll(self) -> float | None:
        """Read the ADC; returns (and reports) the new position if the knob moved it."""
        return self.feed(self.adc.raw_value)

    def feed(self, raw: int) -> float | None:
        """Take one ADC reading (0..1023); what :meth:`poll` does after reading the chip."""
        h, top = self.hysteresis, self.FULL_SCALE
        # the ends snap, so a knob turned fully is exactly 0 or 1 despite the band
        raw = 0 if raw <= h else top if raw >= top - h else int(raw)
        with self._lock:
            if self._raw is not None:
                moved = abs(raw - self._raw) > h or (raw != self._raw and raw in (0, top))
                if not moved:
                    return None
            before = self._physical
            self._raw = raw
            now = self._physical = self._travel(raw / self.FULL_SCALE)
            if not self._picked:
                target = self._position
                crossed = before is not None and (before - target) * (now - target) < 0
                if abs(now - target) <= self.pickup_window or crossed:
                    self._picked = True
                else:
                    return None
            if now == self._position:
                return None
            self._position = now
            callback = self.when_changed
        if callback is not None:
            callback(now)
        return now
