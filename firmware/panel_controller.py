"""The front panel, mapped onto the parameter schema and driven through :class:`Control`.

:class:`hw.panel.Panel` knows devices; this module knows what they mean on *this* box:

* Knobs: each knob drives one schema parameter (through :meth:`dsp.schema.Param.from_position`,
  so a log-curve parameter turns like a log knob) or a macro (``glue``: several parameters
  along the curves the schema defines). Turns go into the state with ``source="panel"``;
  every other change to the state (a preset recall, the web UI, learning) moves the knobs'
  idea of where they are, which re-arms potentiometer pick-up.
* Buttons (short / long press):

  ===========  ==============================  =============================================
  BYPASS       A/B: toggle bypass               hold 5 s: save the state, run the configured
                                                shutdown command (``[system] shutdown_command``)
  PRESET-      previous preset                  held while the box starts: safe mode
  PRESET+      next preset                      hold 2 s: save into the active user preset
  LEARN        start / stop loudness learning   hold 1 s: mono check (listen in mono; held
                                                again, or in any other listening mode: stereo)
  CAPTURE      start / stop a capture           hold 1 s: REF (the reference track, level-matched,
                                                in place of the master; held again: the master).
                                                With no reference chosen a hold is a press
  ===========  ==============================  =============================================

  While the web UI waits for a first-time claim (``control.claim``, see :mod:`webui.claim`),
  the status LED flickers and the next short press of any button is the claim, not its action.

* Meters: :class:`hw.panel.PanelLoop` reads the engine's shared meters (``control.meters``)
  at ``refresh_hz`` and the status LED says safe mode, error, learning, capturing or running.

Nothing a button or knob does runs in gpiozero's callback threads: they only queue work for
one worker thread, so a slow action (a preset save, an engine that does not answer) never
delays the next knob turn, and an action that fails flashes the error pattern and is logged
instead of killing the panel. The panel depends on the state and the engine only, never on
the web server: if the web server dies, the panel carries on (and the other way round).

Boot, in the control process (safe mode must be known before the state is restored)::

    spec = firmware.config.panel_spec(cfg)
    panel = hw.panel.Panel(spec)
    control = Control(config=cfg, safe_mode=safe_mode_held(panel))
    PanelController(control, panel=panel, config=cfg).start()
"""

from __future__ import annotations

import logging
import queue
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from dsp import schema
from hw.panel.encoder import RotaryKnob
from hw.panel.panel import MeterContext, Panel, PanelLoop
from hw.panel.spec import KnobSpec, PanelSpec

log = logging.getLogger("masterbox.panel")

ERROR_FLASH_S = 3.0   # how long the status LED shows "error" after an action failed
SOURCE = "panel"      # the state-change source the panel's own knob turns carry
SLOT_FLASH_S = 1.4    # after a switch of settings 1 / 2, the status LED flashes the slot's number for this long


def safe_mode_held(panel: Panel) -> bool:
    """True if PRESET- is held down right now (call it before the state is restored)."""
    button = panel.buttons.get("preset_down")
    return bool(button is not None and button.is_pressed)


class KnobBinding:
    """What one knob means: the schema values at a 0..1 position, and back."""

    MACRO_SAMPLES = 400

    def __init__(self, spec: KnobSpec):
        self.spec = spec
        self.param = schema.BY_ID[spec.param] if spec.param else None
        self.macro = schema.MACROS[spec.macro] if spec.macro else None
        self.also = dict(spec.also_set)
        if self.param is not None:
            self.ids = {self.param.id, *self.also}
        else:
            self.ids = {*self.macro.curves, *self.macro.switches, *self.also}

    @property
    def steps(self) -> int | None:
        """Detents a choice or switch parameter needs for its whole travel (None: continuous)."""
        p = self.param
        if p is not None and p.curve == schema.ENUM:
            return max(len(p.choices) - 1, 1)
        if p is not None and p.curve == schema.BOOL:
            return 1
        return None

    def values(self, position: float) -> dict[str, Any]:
        out = dict(self.also)
        if self.param is not None:
            p, v = self.param, self.param.from_position(position)
            if p.curve in (schema.LIN, schema.LOG):
                v = min(max(v, p.min), p.max)   # a log curve's float rounding must not leave the range
            out[p.id] = v
        else:
            out.update(self.macro.values(position))
        return out

    def position(self, values) -> float:
        if self.param is not None:
            return self.param.to_position(values[self.param.id])
        # A macro has no inverse in general: find the position whose curve points are
        # nearest (in knob travel) to the current values. If the values are off the curves
        # (edited one by one in the web UI), the knob shows the nearest point, and the first
        # turn puts the parameters back on the curves.
        curves = self.macro.curves
        now = {pid: schema.BY_ID[pid].to_position(values[pid]) for pid in curves}
        best, best_d = 0.0, float("inf")
        for i in range(self.MACRO_SAMPLES + 1):
            x = i / self.MACRO_SAMPLES
            at = self.macro.values(x)
            d = sum((schema.BY_ID[pid].to_position(at[pid]) - now[pid]) ** 2 for pid in curves)
            if d < best_d - 1e-12:
                best, best_d = x, d
        return best


class PanelController:
    """Connects a :class:`~hw.panel.Panel` to :class:`firmware.control.Control`.

    :param control: the box (``.state``, ``.presets``, ``.meters``, ``bypass``,
        ``capture_start``/``capture_stop``, ``learn_start``/``learn_stop``).
    :param panel: the panel (a :class:`~hw.panel.SimulatedPanel` in the demo and tests);
        :data:`None` builds one from ``spec`` or ``config``.
    :param spec: a :class:`~hw.panel.PanelSpec` (default: parsed from ``config``).
    :param config: the loaded config (for ``[panel]`` and ``[system] shutdown_command``).
    :param safe_mode: whether the box booted in safe mode; :data:`None` asks the state
        (``control.state.safe_mode``) and the PRESET- button.
    :param run: how the shutdown command is started (default ``subprocess.Popen``).
    """

    def __init__(self, control, *, panel: Panel | None = None, spec: PanelSpec | None = None,
                 config: dict | None = None, safe_mode: bool | None = None,
                 run: Callable[[list[str]], Any] | None = None):
        self.control = control
        self.config = config or {}
        if spec is None:
            if panel is not None:
                spec = panel.spec
            else:
                from firmware.config import DEFAULTS, panel_spec
                spec = panel_spec(self.config or DEFAULTS)
        self.spec = spec
        self.panel = panel if panel is not None else Panel(spec)
        self._run_command = run if run is not None else subprocess.Popen
        self.bindings = {k.name: KnobBinding(k) for k in spec.knobs}
        # PRESET- held now was held at boot (safe mode): the end of that hold is not a press
        held = safe_mode_held(self.panel)
        self._boot_hold = self.panel.buttons["preset_down"].pin_factory.ticks() if held else None
        if safe_mode is None:
            safe_mode = held or bool(getattr(control.state, "safe_mode", False))
        self.safe_mode = safe_mode
        self.shutting_down = False
        self.capturing = False
        self.learning = False
        self._error_until = 0.0
        self._slot = control.state.slot
        self._slot_until = 0.0
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._pending: dict[str, float] = {}
        self._queue: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None
        for name, knob in self.panel.knobs.items():
            steps = self.bindings[name].steps
            if steps is not None and isinstance(knob, RotaryKnob):
                knob.detents, knob.accelerator = steps, None
        self.loop = PanelLoop(self.panel, self._read_meters, self.meter_context, spec.refresh_hz)

    # -- life ----------------------------------------------------------------------------
    def start(self) -> PanelController:
        self.sync_knobs()
        self._unsubscribe = self.control.state.subscribe(self._state_changed)
        self.panel.on_knob = self._knob_moved
        self.panel.on_button = self._button
        self._worker = threading.Thread(target=self._work, name="panel-actions", daemon=True)
        self._worker.start()
        self.loop.start()
        return self

    def close(self) -> None:
        self.panel.on_knob = self.panel.on_button = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.loop.stop()
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=5.0)
            self._worker = None

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every queued knob turn and button action has been applied."""
        done = threading.Event()
        self._queue.put(("call", done.set))
        if not done.wait(timeout):
            raise TimeoutError("panel actions did not drain")

    # -- knobs ---------------------------------------------------------------------------
    def sync_knobs(self, changes=None) -> None:
        """Move every knob (or those whose parameters are in ``changes``) to the state's values."""
        values = self.control.state.values
        for name, b in self.bindings.items():
            if changes is None or b.ids & changes.keys():
                self.panel.set_knob(name, b.position(values))

    def _state_changed(self, changes: dict, source: str) -> None:
        slot = self.control.state.slot
        if slot != self._slot:      # settings 1 / 2 switched (here, on the web, by an undo): say which
            self._slot, self._slot_until = slot, time.monotonic() + SLOT_FLASH_S
        if source == SOURCE:
            return  # our own turn: the knob already is where it says
        self.sync_knobs(changes)

    def _knob_moved(self, name: str, position: float) -> None:
        # gpiozero's thread (or the panel loop's): coalesce, queue, return
        with self._lock:
            first = name not in self._pending
            self._pending[name] = position
        if first:
            self._queue.put(("knob", name))

    def _apply_knob(self, name: str) -> None:
        with self._lock:
            position = self._pending.pop(name, None)
        if position is None:
            return
        self.control.state.set(self.bindings[name].values(position), SOURCE)

    # -- buttons -------------------------------------------------------------------------
    def _button(self, role: str, kind: str) -> None:
        if role == "preset_down" and self._boot_hold is not None:
            button = self.panel.buttons[role]
            started = button.press_started
            if started is None or button.pin_factory.ticks_diff(self._boot_hold, started) >= 0:
                return      # the hold that asked for safe mode, begun before we existed
            self._boot_hold = None
        action = self._ACTIONS.get((role, kind)) or self._ACTIONS.get((role, "short"))

        def act():
            # The web UI's first-time claim (webui.claim, attached as control.claim) waits
            # for someone at the box to press a button: such a press is consumed by it.
            claim = getattr(self.control, "claim", None)
            if kind == "short" and claim is not None and claim.press(role):
                log.info("panel: %s press claimed the web UI", role)
                return
            action(self)

        self._queue.put(("call", act))

    def _bypass(self):
        on = not bool(getattr(self.control, "bypassed", False))
        self._check(self.control.bypass(on), "bypass")

    def _shutdown(self):
        state = self.control.state
        if hasattr(state, "flush"):
            state.flush()
        cmd = (self.config.get("system") or {}).get("shutdown_command", "systemctl poweroff")
        log.warning("BYPASS held: state saved, running %r", cmd)
        self._run_command(shlex.split(cmd))   # a command that cannot start flashes the error pattern
        self.shutting_down = True

    def _preset_step(self, delta: int) -> None:
        names = [n for n in self.control.presets.names() if n]
        if not names:
            raise RuntimeError("no presets to step through")
        active = self.control.state.active_preset
        keys = [n.casefold() for n in names]
        if active and active.casefold() in keys:
            i = (keys.index(active.casefold()) + delta) % len(names)
        else:
            i = 0 if delta > 0 else len(names) - 1
        recall = getattr(self.control, "recall", None) or self.control.state.recall
        recall(names[i])

    def _save_preset(self):
        active = self.control.state.active_preset
        if not active or self.control.presets.is_factory(active):
            raise RuntimeError(f"PRESET+ held: the active preset {active!r} is not a user preset; "
                               "save it under a name from the web UI first")
        save = getattr(self.control, "save_preset", None)
        if save is not None:
            save(active)
        else:
            self.control.presets.save(active, self.control.state.values)
            self.control.state.mark_saved(active)

    def _learn(self):
        learner = getattr(self.control, "learner", None)
        running = learner.running if learner is not None else self.learning
        reply = self.control.learn_stop() if running else self.control.learn_start()
        self.learning = not running
        self._check(reply, "learn")

    def _mono(self):
        """Mono check: stereo -> mono; any other listening mode (mono, side, L, R) -> stereo, so the
        same hold always brings the speakers back to the stereo master."""
        mode = "mono" if getattr(self.control, "monitor_mode", "stereo") == "stereo" else "stereo"
        self._check(self.control.monitor(mode), "monitor")

    def _compare(self):
        """Settings 1 <-> 2 (firmware/settings_slots.py): the box's COMPARE. The knobs follow (and
        wait to be picked up) as after a recall, since the change does not carry the panel's source."""
        state = self.control.state
        state.select_slot(3 - state.slot)

    def _capture(self):
        m = self._read_meters() or {}
        running = bool(m.get("capturing", self.capturing))
        reply = self.control.capture_stop() if running else self.control.capture_start()
        if self._check(reply, "capture"):
            self.capturing = not running

    def _reference(self):
        """REF from the panel: the reference track (chosen on the web UI's Captures page) in place of
        the master, level-matched, as the Live page's REF button; held again, the master. Off or on
        follows what the speakers hear now (the engine's ``reference`` meter field), so a REF switched
        on from the web is switched off by the next hold. With no reference chosen the hold is a
        CAPTURE press: a button held a little long must never lose a recording."""
        ref = getattr(self.control, "reference", None)
        if ref is None or ref.info is None:
            self._capture()
            return
        heard = bool((self._read_meters() or {}).get("reference", False))
        self._check(ref.switch(not heard), "reference")

    _ACTIONS: dict[tuple[str, str], Callable[[PanelController], None]] = {
        ("bypass", "short"): _bypass,
        ("bypass", "long"): _shutdown,
        ("preset_down", "short"): lambda self: self._preset_step(-1),
        ("preset_down", "long"): _compare,
        ("preset_up", "short"): lambda self: self._preset_step(+1),
        ("preset_up", "long"): _save_preset,
        ("learn", "short"): _learn,
        ("learn", "long"): _mono,
        ("capture", "short"): _capture,
        ("capture", "long"): _reference,
    }

    def _check(self, reply, what: str) -> bool:
        if isinstance(reply, dict) and reply.get("ok") is False:
            self._fail(f"{what}: {reply.get('error', 'failed')}")
            return False
        return True

    def _fail(self, message: str) -> None:
        self.last_error = message
        self._error_until = time.monotonic() + ERROR_FLASH_S
        log.warning("panel: %s", message)

    # -- the worker ----------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            kind, payload = item
            try:
                if kind == "knob":
                    self._apply_knob(payload)
                else:
                    payload()
            except Exception as e:  # one failed action must not stop the panel
                self._fail(str(e) or type(e).__name__)

    # -- meters and status ---------------------------------------------------------------
    def _read_meters(self) -> dict | None:
        read = getattr(self.control, "read_meters", None)
        if read is not None:
            return read()
        meters = getattr(self.control, "meters", None)
        return meters.read() if meters is not None else None

    def status(self, meters: dict | None = None) -> str:
        """The status LED's pattern: the most important thing the box is doing."""
        if self.shutting_down:
            return "off"
        claim = getattr(self.control, "claim", None)
        if claim is not None and claim.armed:
            return "claim"          # a browser waits for a button press at the box
        # The state knows best (it leaves safe mode when a preset is recalled); a state
        # without the notion falls back to what the panel saw at boot.
        if getattr(self.control.state, "safe_mode", self.safe_mode):
            return "safe_mode"
        # no reading: no engine (or a stale one); device_lost: the audio interface went away
        if meters is None or meters.get("state") in ("device_lost", "error") or time.monotonic() < self._error_until:
            return "error"
        if time.monotonic() < self._slot_until:
            return f"slot_{self._slot}"     # just switched to settings 1 or 2: its number in flashes
        learner = getattr(self.control, "learner", None)
        if learner.running if learner is not None else self.learning:
            return "learning"
        if meters.get("capturing", self.capturing):
            return "capturing"
        if (meters.get("monitor", "stereo") not in (None, "stereo") or meters.get("preview", "off") not in (None, "off")
                or meters.get("reference")):
            return "monitor"  # the speakers hear mono, side, one channel, a service's level or REF, not the master
        return "running"

    def meter_context(self, meters: dict | None) -> MeterContext:
        get = self.control.state.get
        return MeterContext(target_lufs=float(get("target.lufs")), ceiling_dbtp=float(get("lim.ceiling_dbtp")),
                            status=self.status(meters))
