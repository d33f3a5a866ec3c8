"""The panel: every device of a :class:`~hw.panel.spec.PanelSpec`, built, fed and shown.

:class:`Panel` owns the gpiozero devices and knows nothing about the box's state: knobs
report 0..1 positions through :attr:`Panel.on_knob`, buttons report short and long presses
through :attr:`Panel.on_button`, and :meth:`Panel.show_meters` takes one reading of the
engine's shared meters. :class:`PanelLoop` is the one thread that polls the
potentiometers and refreshes the meters at ``refresh_hz``. :mod:`firmware.panel_controller`
wires all of it to :class:`firmware.control.Control`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from hw.panel.buttons import PanelButton
from hw.panel.encoder import Accelerator, RotaryKnob
from hw.panel.meters import ClipLED, PeakHoldBarGraph, StatusLED, VUNeedle
from hw.panel.pot import PotKnob
from hw.panel.spec import PanelSpec

log = logging.getLogger(__name__)


@dataclass
class MeterContext:
    """What the meters need besides the engine's readings: the active preset's loudness
    target and true-peak ceiling, and the box's status (see :class:`StatusLED`)."""

    target_lufs: float = -14.0
    ceiling_dbtp: float = -1.0
    status: str = "running"


def _rel(value, ref):
    return None if value is None else value - ref


def _gr(m, _c):
    vals = [m.get(k) for k in ("gr_low_db", "gr_mid_db", "gr_high_db", "gr_limiter_db")]
    vals = [v for v in vals if v is not None]
    return max(vals) if vals else None


# Meter sources: name -> (function(meters, context) -> reading or None, what it shows).
SOURCES: dict[str, tuple[Callable, str]] = {
    "loudness": (lambda m, c: _rel(m.get("out_short_term_lufs"), c.target_lufs),
                 "output short-term loudness, LU relative to the preset's target"),
    "momentary": (lambda m, c: _rel(m.get("out_momentary_lufs"), c.target_lufs),
                  "output momentary loudness, LU relative to the preset's target"),
    "gain_reduction": (_gr, "largest gain reduction of the three bands and the limiter, dB"),
    "gr_low": (lambda m, c: m.get("gr_low_db"), "low band gain reduction, dB"),
    "gr_mid": (lambda m, c: m.get("gr_mid_db"), "mid band gain reduction, dB"),
    "gr_high": (lambda m, c: m.get("gr_high_db"), "high band gain reduction, dB"),
    "gr_limiter": (lambda m, c: m.get("gr_limiter_db"), "limiter gain reduction, dB"),
    "true_peak": (lambda m, c: _rel(m.get("out_true_peak_dbtp"), c.ceiling_dbtp),
                  "output true peak, dB relative to the ceiling"),
    "peak": (lambda m, c: m.get("out_peak_dbfs"), "output sample peak, dBFS"),
}


def _hold_threads(devices):
    """gpiozero's hold threads (:class:`gpiozero.mixins.HoldThread`) of ``devices`` and of their parts
    (an encoder's push switch); nothing if a gpiozero version keeps them otherwise."""
    for dev in devices:
        thread = getattr(dev, "_hold_thread", None)
        if thread is not None and hasattr(thread, "stopping") and hasattr(thread, "holding"):
            yield thread
        yield from _hold_threads(getattr(dev, "_all", None) or ())


class Panel:
    """Builds and holds the devices of ``spec``.

    :param PanelSpec spec: what to build (see :func:`firmware.config.panel_spec`).
    :param pin_factory: gpiozero pin factory; :data:`None` uses gpiozero's default
        (``GPIOZERO_PIN_FACTORY``). :class:`hw.panel.SimulatedPanel` passes a
        :class:`~gpiozero.pins.mock.MockFactory`.

    Set :attr:`on_knob` to ``f(name, position)`` and :attr:`on_button` to
    ``f(role, "short" | "long")``; both are called from gpiozero's threads (or the panel
    loop's, for potentiometers), so they must return quickly.
    """

    def __init__(self, spec: PanelSpec, *, pin_factory=None):
        self.spec = spec
        self.pin_factory = pin_factory
        self.on_knob: Callable[[str, float], None] | None = None
        self.on_button: Callable[[str, str], None] | None = None
        self.knobs: dict[str, RotaryKnob | PotKnob] = {}
        self.buttons: dict[str, PanelButton] = {}
        self.bars: dict[str, PeakHoldBarGraph] = {}
        self.needles: dict[str, VUNeedle] = {}
        self.status_led: StatusLED | None = None
        self.clip_led: ClipLED | None = None
        self.clip_source = "true_peak"
        self.status = "off"
        self._last_over = None
        self._devices = []
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    # -- construction --------------------------------------------------------------------
    def _add(self, device):
        self._devices.append(device)
        return device

    def _build(self) -> None:
        pf = self.pin_factory
        for k in self.spec.knobs:
            if k.kind == "encoder":
                accel = Accelerator(k.acceleration) if k.acceleration > 1 else None
                push = k.pins[2] if len(k.pins) > 2 else None
                dev = RotaryKnob(k.pins[0], k.pins[1], push, detents=k.detents, fine=k.fine, accelerator=accel,
                                 transitions_per_detent=k.transitions_per_detent, pin_factory=pf)
            else:
                dev = PotKnob(k.channel, hysteresis=k.hysteresis, pickup_window=k.pickup_window,
                              takeover=k.takeover, centre_detent=k.centre_detent, spi=self.spec.adc.spi_args(),
                              pin_factory=pf)
            dev.when_changed = self._knob_callback(k.name)
            self.knobs[k.name] = self._add(dev)
        for b in self.spec.buttons:
            dev = PanelButton(b.pin, hold_time=b.hold, pin_factory=pf)
            dev.when_short_press = self._button_callback(b.role, "short")
            dev.when_long_press = self._button_callback(b.role, "long")
            self.buttons[b.role] = self._add(dev)
        for m in self.spec.meters:
            if m.kind == "bar":
                self.bars[m.name] = self._add(PeakHoldBarGraph(*m.pins, thresholds=m.thresholds,
                                                               peak_hold=m.peak_hold, pin_factory=pf))
            else:
                self.needles[m.name] = self._add(VUNeedle(m.pin, scale=m.scale, span=m.span, pin_factory=pf))
        if self.spec.status_pin is not None:
            self.status_led = self._add(StatusLED(self.spec.status_pin, pin_factory=pf))
        if self.spec.clip_pin is not None:
            self.clip_led = self._add(ClipLED(self.spec.clip_pin, hold=self.spec.clip_hold, pin_factory=pf))

    def _knob_callback(self, name):
        def changed(position):
            if self.on_knob is not None:
                self.on_knob(name, position)
        return changed

    def _button_callback(self, role, kind):
        def pressed():
            if self.on_button is not None:
                self.on_button(role, kind)
        return pressed

    # -- inputs --------------------------------------------------------------------------
    @property
    def pots(self) -> dict[str, PotKnob]:
        return {n: k for n, k in self.knobs.items() if isinstance(k, PotKnob)}

    def poll_pots(self) -> None:
        for knob in self.knobs.values():
            if isinstance(knob, PotKnob):
                knob.poll()

    # -- a hand on the panel, from elsewhere (the web UI's virtual panel) -----------------
    def turn(self, name: str, detents: int) -> float:
        """Knob ``name`` turned ``detents`` detents; returns its position.

        On this (physical) panel it enters the knob where the decoded GPIO edges do
        (:meth:`RotaryKnob.turn`; a potentiometer moves its parameter 1 % per detent and
        re-arms pick-up, :meth:`PotKnob.turn`), so :attr:`on_knob` and everything after it is
        the hand's path. :class:`~hw.panel.SimulatedPanel` turns it with edges on mock pins.
        """
        return self.knobs[name].turn(detents)

    def press_for(self, role: str, seconds: float | None = None) -> str | None:
        """Button ``role`` pressed for ``seconds`` (:data:`None`: a short press); returns what
        the press was (``"short"``, ``"long"`` or :data:`None` for a glitch).

        The button's own rule decides (:meth:`PanelButton.classify`) and :attr:`on_button`
        gets what a press of that length on the real button gives, at once: the person has
        already held it (in the browser). :class:`~hw.panel.SimulatedPanel` presses the mock
        pin for that long instead.
        """
        kind = self.buttons[role].classify(seconds)
        if kind is not None:
            self._button_callback(role, kind)()
        return kind

    def set_knob(self, name: str, position: float) -> None:
        """The parameter behind knob ``name`` moved elsewhere: follow it (re-arms pick-up)."""
        self.knobs[name].set_position(position)

    # -- outputs -------------------------------------------------------------------------
    def show_meters(self, meters: dict | None, context: MeterContext, now: float) -> None:
        """Show one reading of the engine's meters (``None``: no engine) at time ``now``."""
        m = meters or {}
        for spec in self.spec.meters:
            reading = SOURCES[spec.source][0](m, context)
            (self.bars.get(spec.name) or self.needles[spec.name]).show(reading, now)
        if self.clip_led is not None:
            # The engine's true peak may be a running maximum (it only changes when a new,
            # higher peak arrives) or a per-update peak: lighting on a *changed* reading above
            # the ceiling flags every new over under either meaning, never a stale one.
            over = SOURCES[self.clip_source][0](m, context)
            fresh = over is not None and over > 0.0 and over != self._last_over
            self._last_over = over
            self.clip_led.show(fresh, now)
        self.status = context.status
        if self.status_led is not None:
            self.status_led.show(context.status, now)

    # -- the whole panel as plain data ----------------------------------------------------
    def snapshot(self) -> dict:
        """Knobs, buttons and meters as JSON-able data (for the web UI's virtual panel)."""
        knobs = {}
        for spec in self.spec.knobs:
            k = self.knobs[spec.name]
            d = {"kind": spec.kind, "param": spec.param, "macro": spec.macro, "position": round(k.position, 5)}
            if isinstance(k, PotKnob):
                d.update(physical=None if k.physical is None else round(k.physical, 5), picked_up=k.picked_up,
                         pickup_direction=k.pickup_direction)
            else:
                d.update(pushed=k.fine_active)
            knobs[spec.name] = d
        bars, needles = {}, {}
        for spec in self.spec.meters:
            if spec.name in self.bars:
                bars[spec.name] = {"leds": self.bars[spec.name].shown, "source": spec.source,
                                   "thresholds": list(spec.thresholds)}
            else:
                needles[spec.name] = {"deflection": round(self.needles[spec.name].value, 4),
                                      "source": spec.source, "scale": spec.scale}
        return {
            "simulated": False,
            "knobs": knobs,
            "buttons": {role: {"pressed": b.is_pressed, "hold": b.hold_time} for role, b in self.buttons.items()},
            "bars": bars,
            "needles": needles,
            "clip": None if self.clip_led is None else self.clip_led.is_lit,
            "status": {"pattern": self.status, "lit": None if self.status_led is None else self.status_led.is_lit},
        }

    def close(self) -> None:
        # gpiozero stops a button's hold thread by joining it, and the thread notices only at its
        # next 0.1 s poll: closing the buttons one by one took about half a second a panel. All
        # of them are told first and woken (with the stop already set, the wake-up fires nothing),
        # so each join below returns at once (a button held down at that moment still ends its hold wait first,
        # as before).
        for thread in _hold_threads(self._devices):
            thread.stopping.set()
            thread.holding.set()
        for dev in reversed(self._devices):
            try:
                dev.close()
            except Exception:  # closing is best effort: one stuck pin must not keep others open
                log.exception("closing %r", dev)
        self._devices.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class PanelLoop:
    """The one thread that polls the potentiometers and refreshes the meters.

    :param Panel panel: the panel.
    :param read_meters: ``f() -> dict | None``: one reading of the engine's shared meters
        (:meth:`firmware.meters_shm.MeterReader.read`); cheap, never blocks.
    :param context: ``f(meters) -> MeterContext`` (given this tick's reading, so the status
        can say "no engine").
    :param float rate_hz: ticks per second (>= 30 for meters that look alive).
    :param int pot_every: poll the potentiometers every this many ticks (2 at 40 Hz: 20
        reads a second, 50 ms at most between a turn and its reading).

    A tick that raises is logged (once per distinct message) and the loop carries on: a
    meter glitch must never stop the knobs. :meth:`stats` reports ticks, the achieved rate
    and the CPU time per tick.
    """

    def __init__(self, panel: Panel, read_meters: Callable[[], dict | None],
                 context: Callable[[dict | None], MeterContext], rate_hz: float = 40.0, pot_every: int = 2):
        self.panel = panel
        self.pot_every = max(int(pot_every), 1)
        self.read_meters = read_meters
        self.context = context
        self.period = 1.0 / float(rate_hz)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0
        self.cpu_s = 0.0
        self._started = None
        self._last_error = None

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self.ticks % self.pot_every == 0:
            self.panel.poll_pots()
        try:
            meters = self.read_meters()
        except Exception as e:  # a broken reader shows as "no engine", never as a dead panel
            self._log_once(e)
            meters = None
        self.panel.show_meters(meters, self.context(meters), now)
        self.ticks += 1

    def _log_once(self, e: Exception) -> None:
        if repr(e) != self._last_error:
            self._last_error = repr(e)
            log.warning("panel loop: %s", e)

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            c0 = time.thread_time()
            try:
                self.tick()
            except Exception as e:
                self._log_once(e)
            self.cpu_s += time.thread_time() - c0
            next_t += self.period
            delay = next_t - time.monotonic()
            if delay < -self.period:      # fell behind (suspended?): do not race to catch up
                next_t = time.monotonic()
                delay = 0.0
            self._stop.wait(max(delay, 0.0))

    def start(self) -> None:
        if self._thread is None:
            self._started = time.monotonic()
            self._thread = threading.Thread(target=self._run, name="panel-loop", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def stats(self) -> dict:
        elapsed = time.monotonic() - self._started if self._started else 0.0
        return {
            "ticks": self.ticks,
            "rate_hz": round(self.ticks / elapsed, 1) if elapsed > 0 else 0.0,
            "cpu_ms_per_tick": round(1000.0 * self.cpu_s / self.ticks, 4) if self.ticks else 0.0,
            "cpu_percent": round(100.0 * self.cpu_s / elapsed, 3) if elapsed > 0 else 0.0,
        }
