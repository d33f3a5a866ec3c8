"""Meters on the panel: LED bar graphs with peak hold, a PWM moving-coil needle with VU
ballistics, a clip LED and a status LED that blinks patterns.

Every device here is *pushed* a reading by the panel loop (:mod:`hw.panel.loop`) a few
dozen times a second and only touches a pin when what it shows actually changes: a meter
that rewrites eight LEDs forty times a second for nothing is CPU the control process does
not need to spend. Each ``show`` method takes the time (seconds, any monotonic origin) so
the ballistics and hold times do not depend on how regularly the loop runs, and so tests
can step time exactly.
"""

from __future__ import annotations

import math

from gpiozero import LED, LEDBarGraph, PWMOutputDevice


class PeakHoldBarGraph(LEDBarGraph):
    """A line of LEDs, each lit when the reading reaches its threshold, plus a held peak.

    :param pins: GPIO pins, bottom LED first.
    :param thresholds:
        One ascending threshold per LED, in the units of the reading (LU relative to the
        target for a loudness bar, dB of gain reduction for a GR bar). Printing these
        next to the LEDs is how a panel is labelled.
    :param float peak_hold: seconds the highest LED reached stays lit after the reading
        falls (0 for no peak hold).

    A reading of :data:`None` (no engine, silence) lights nothing but the held peak.
    """

    def __init__(self, *pins, thresholds, peak_hold: float = 1.5, pin_factory=None):
        thresholds = [float(t) for t in thresholds]
        if len(thresholds) != len(pins):
            raise ValueError("one threshold per LED")
        if any(b <= a for a, b in zip(thresholds, thresholds[1:], strict=False)):
            raise ValueError("thresholds must be ascending")
        super().__init__(*pins, pwm=False, pin_factory=pin_factory)
        self.thresholds = tuple(thresholds)
        self.peak_hold = float(peak_hold)
        self.lit = 0            # LEDs lit by the current reading
        self.peak = 0           # LEDs covered by the held peak (the top one stays lit)
        self._peak_until = 0.0
        self._shown = [False] * len(pins)

    def level_for(self, reading) -> int:
        """How many LEDs ``reading`` lights."""
        if reading is None:
            return 0
        n = 0
        for t in self.thresholds:
            if reading >= t:
                n += 1
            else:
                break
        return n

    def show(self, reading, now: float) -> None:
        self.lit = lit = self.level_for(reading)
        if lit >= self.peak or now >= self._peak_until or self.peak_hold <= 0:
            # a new peak, or the old one has been held long enough: hold from here
            self.peak, self._peak_until = lit, now + self.peak_hold
        frame = [i < lit or i == self.peak - 1 for i in range(len(self._shown))]
        for i, (want, have) in enumerate(zip(frame, self._shown, strict=True)):
            if want != have:
                self.leds[i].value = want
        self._shown = frame

    @property
    def shown(self) -> list[bool]:
        """What the LEDs show now, bottom first."""
        return list(self._shown)


def _vu_omega(rise: float, zeta: float) -> float:
    """Natural frequency that makes a unit step first reach 99 % at ``rise`` seconds."""

    def first_99(omega: float) -> float:
        sigma, wd = zeta * omega, omega * math.sqrt(1.0 - zeta * zeta)
        t, dt = 0.0, 1e-4
        while True:
            t += dt
            y = 1.0 - math.exp(-sigma * t) * (math.cos(wd * t) + sigma / wd * math.sin(wd * t))
            if y >= 0.99:
                return t

    # the response time scales as 1/omega, so one evaluation at omega = 1 is enough
    return first_99(1.0) / rise


class VUBallistics:
    """A VU meter movement: a damped second-order system (IEC 60268-17).

    A step reaches 99 % of its final reading in ``rise`` seconds (300 ms) and overshoots by
    ``overshoot`` (1 to 1.5 % for a VU meter; 1.25 % here). The motion is integrated exactly
    (closed form) for whatever time passed since the last call, so the needle moves the
    same however irregularly it is updated.
    """

    def __init__(self, rise: float = 0.3, overshoot: float = 0.0125):
        ln = math.log(overshoot)
        self.zeta = -ln / math.sqrt(math.pi ** 2 + ln * ln)
        self.omega = _vu_omega(rise, self.zeta)
        self._sigma = self.zeta * self.omega
        self._wd = self.omega * math.sqrt(1.0 - self.zeta ** 2)
        self.x = 0.0   # deflection
        self.v = 0.0   # its velocity

    def step(self, target: float, dt: float) -> float:
        if dt <= 0:
            return self.x
        e0, v0 = self.x - target, self.v
        decay = math.exp(-self._sigma * dt)
        c, s = math.cos(self._wd * dt), math.sin(self._wd * dt)
        self.x = target + decay * (e0 * c + (v0 + self._sigma * e0) / self._wd * s)
        self.v = decay * (v0 * c - (self.omega ** 2 * e0 + self._sigma * v0) / self._wd * s)
        return self.x


class VUNeedle(PWMOutputDevice):
    """A moving-coil meter driven by PWM through a series resistor, with VU ballistics.

    :param pin: a PWM-capable GPIO pin.
    :param str scale:
        ``"vu"``: a standard VU face, where the deflection is proportional to the signal's
        amplitude: 0 VU sits at 70.8 % of full scale and +3 VU at full scale; the reading
        is in dB relative to 0 VU. ``"linear"``: a custom face marked evenly in dB from
        ``span[0]`` (rest) to ``span[1]`` (full scale), e.g. for gain reduction.
    :param span: the dB range of a ``"linear"`` face.
    :param float frequency: PWM frequency; a meter movement integrates anything above a
        few hundred hertz.

    The pin is only rewritten when the needle moved by more than 1/1000 of full scale.
    """

    def __init__(self, pin, *, scale: str = "vu", span=(0.0, 20.0), frequency: float = 1000.0,
                 rise: float = 0.3, pin_factory=None):
        if scale not in ("vu", "linear"):
            raise ValueError("scale must be 'vu' or 'linear'")
        super().__init__(pin, frequency=frequency, initial_value=0.0, pin_factory=pin_factory)
        self.scale = scale
        self.span = (float(span[0]), float(span[1]))
        self.ballistics = VUBallistics(rise)
        self._last = None

    def deflection_for(self, reading) -> float:
        """Where a steady ``reading`` (dB) would rest the needle, 0..1 (beyond 1: pinned)."""
        if reading is None:
            return 0.0
        if self.scale == "vu":
            return 10.0 ** ((reading - 3.0) / 20.0)
        lo, hi = self.span
        return min(max((reading - lo) / (hi - lo), 0.0), 1.2)

    def show(self, reading, now: float) -> None:
        dt = 0.0 if self._last is None else now - self._last
        self._last = now
        x = self.ballistics.step(self.deflection_for(reading), min(dt, 1.0))
        duty = min(max(x, 0.0), 1.0)
        if abs(duty - self.value) > 1e-3 or (duty == 0.0) != (self.value == 0.0):
            self.value = duty


class ClipLED(LED):
    """Lights when the true peak goes over the ceiling, and stays lit ``hold`` seconds so
    a single over is seen."""

    def __init__(self, pin, *, hold: float = 1.0, pin_factory=None):
        super().__init__(pin, pin_factory=pin_factory)
        self.hold = float(hold)
        self._until = -math.inf

    def show(self, over: bool, now: float) -> None:
        if over:
            self._until = now + self.hold
        want = now < self._until
        if want != self.is_lit:
            self.value = want


class StatusLED(LED):
    """One LED that says what the box is doing by how it blinks.

    ``PATTERNS`` maps a status to a repeating cycle of (lit, seconds) segments:

    ============  ==========================================
    running       steady on
    monitor       on, with a short dip each second: the speakers hear mono, side, one
                  channel, a streaming service's level or the reference, not the stereo master
    capturing     slow blink, 1 Hz
    learning      fast blink, 4 Hz
    error         double flash once a second
    safe_mode     one short flash every two seconds
    claim         fast flicker: the web UI waits for a button press at the box
    slot_1        dark, one flash: settings 1 was just switched in (shown once, 1.4 s)
    slot_2        dark, two flashes: settings 2 was just switched in
    off           off (the control process is not running the panel)
    ============  ==========================================

    The panel loop calls :meth:`show` every tick, so no blink thread is needed.
    """

    PATTERNS: dict[str, tuple[tuple[bool, float], ...]] = {
        "running": ((True, 1.0),),
        "monitor": ((True, 0.85), (False, 0.15)),
        "capturing": ((True, 0.5), (False, 0.5)),
        "learning": ((True, 0.125), (False, 0.125)),
        "error": ((True, 0.1), (False, 0.1), (True, 0.1), (False, 0.7)),
        "safe_mode": ((True, 0.1), (False, 1.9)),
        "claim": ((True, 0.05), (False, 0.05)),
        "slot_1": ((False, 0.3), (True, 0.25), (False, 0.85)),
        "slot_2": ((False, 0.3), (True, 0.25), (False, 0.25), (True, 0.25), (False, 0.35)),
        "off": ((False, 1.0),),
    }

    def __init__(self, pin, *, pin_factory=None):
        super().__init__(pin, pin_factory=pin_factory)
        self.status = "off"
        self._since = 0.0

    def lit_at(self, status: str, elapsed: float) -> bool:
        pattern = self.PATTERNS[status]
        t = elapsed % sum(d for _, d in pattern)
        for lit, d in pattern:
            if t < d:
                return lit
            t -= d
        return pattern[-1][0]

    def show(self, status: str, now: float) -> None:
        if status not in self.PATTERNS:
            raise ValueError(f"unknown status {status!r}")
        if status != self.status:
            self.status, self._since = status, now
        want = self.lit_at(status, now - self._since)
        if want != self.is_lit:
            self.value = want
