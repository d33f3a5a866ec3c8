"""The one parameter schema: every control of the mastering chain, declared once.

Everything that touches a parameter reads this table: the numba kernels (through the flat
float array laid out by :data:`PARAMS`), preset validation, the web UI's controls, the front
panel's knob mappings, and the command line's ``--set id=value``. Adding a parameter means
adding one :class:`Param` row here; nothing else has to learn its range or default.

This module deliberately imports nothing but the standard library (and numpy lazily) so the
control process and the web UI can use it without loading numba.

Values live in two forms:

* the *user value* (what a preset, the web UI or ``--set`` carries): a float for continuous
  parameters, ``True``/``False`` for switches, a choice name (``"bell"``) for enumerations;
* the *flat value* (what the kernels read): always a float; switches are 0.0/1.0 and
  enumerations the index of the choice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 2   # 2: the tone control (eq.tone_db, eq.tone_freq), see firmware/presets.py

LIN, LOG, BOOL, ENUM = "lin", "log", "bool", "enum"


@dataclass(frozen=True)
class Param:
    """One control of the chain.

    ``curve`` says how a knob or slider travels over the range: ``lin`` and ``log`` are
    continuous (``log`` for frequencies and times), ``bool`` is a switch, ``enum`` picks one of
    ``choices``. ``smooth_ms`` is the time constant the kernels use to glide to a new value so
    a jump never clicks; 0 means the change applies at the next block boundary (switches and
    enumerations crossfade inside the kernels instead where a hard switch would click).
    """

    id: str
    label: str
    group: str
    unit: str
    min: float
    max: float
    default: Any
    curve: str = LIN
    smooth_ms: float = 20.0
    choices: tuple[str, ...] = ()
    help: str = ""

    # -- conversions -------------------------------------------------------------------
    def to_flat(self, value: Any) -> float:
        """User value -> the float the kernels read. Assumes ``value`` is valid."""
        if self.curve == ENUM:
            return float(self.choices.index(value))
        if self.curve == BOOL:
            return 1.0 if value else 0.0
        return float(value)

    def from_flat(self, x: float) -> Any:
        """Flat float -> user value."""
        if self.curve == ENUM:
            i = min(max(int(round(x)), 0), len(self.choices) - 1)
            return self.choices[i]
        if self.curve == BOOL:
            return x >= 0.5
        return float(x)

    # -- normalised 0..1 position, for knobs and sliders ---------------------------------
    def to_position(self, value: Any) -> float:
        """User value -> 0..1 position along the control's travel (its ``curve``)."""
        if self.curve == ENUM:
            return self.choices.index(value) / max(len(self.choices) - 1, 1)
        if self.curve == BOOL:
            return 1.0 if value else 0.0
        v = min(max(float(value), self.min), self.max)
        if self.curve == LOG:
            return math.log(v / self.min) / math.log(self.max / self.min)
        return (v - self.min) / (self.max - self.min)

    def from_position(self, pos: float) -> Any:
        """0..1 position -> user value (inverse of :meth:`to_position`)."""
        pos = min(max(float(pos), 0.0), 1.0)
        if self.curve == ENUM:
            return self.choices[int(round(pos * (len(self.choices) - 1)))]
        if self.curve == BOOL:
            return pos >= 0.5
        if self.curve == LOG:
            return self.min * (self.max / self.min) ** pos
        return self.min + pos * (self.max - self.min)

    # -- validation ---------------------------------------------------------------------
    def check(self, value: Any) -> Any:
        """Return the normalised user value, or raise :class:`ParamError` saying why not."""
        if self.curve == ENUM:
            if isinstance(value, str) and value in self.choices:
                return value
            raise ParamError(self.id, f"must be one of {', '.join(self.choices)} (got {value!r})")
        if self.curve == BOOL:
            if isinstance(value, bool):
                return value
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value in (0, 1):
                return bool(value)
            if isinstance(value, str) and value.lower() in ("on", "off", "true", "false", "1", "0"):
                return value.lower() in ("on", "true", "1")
            raise ParamError(self.id, f"must be on/off (true/false), got {value!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ParamError(self.id, f"must be a number in {self.unit or 'units'}, got {type(value).__name__}")
        try:
            x = float(value)
        except OverflowError:   # an integer too large for any float (10**400 written in the JSON)
            raise ParamError(self.id, f"out of range {self.min:g}..{self.max:g} {self.unit}".rstrip()) from None
        except ValueError:
            raise ParamError(self.id, f"must be a number, got {value!r}") from None
        if not math.isfinite(x):
            raise ParamError(self.id, f"must be a finite number, got {value!r}")
        if x < self.min or x > self.max:
            raise ParamError(self.id, f"{x:g} is out of range {self.min:g}..{self.max:g} {self.unit}".rstrip())
        return x


class ParamError(ValueError):
    """A parameter value that the schema refuses; ``field`` names the parameter."""

    def __init__(self, field_name: str, reason: str):
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


def _b(id, label, group, default=False, help=""):
    return Param(id, label, group, "", 0.0, 1.0, default, BOOL, 0.0, help=help)


def _e(id, label, group, choices, default, help=""):
    return Param(id, label, group, "", 0.0, float(len(choices) - 1), default, ENUM, 0.0, tuple(choices), help)


EQ_TYPES = ("bell", "low_shelf", "high_shelf", "low_cut", "high_cut", "tilt")
EQ_PLACES = ("stereo", "mid", "side")
EQ_BANDS = 6
EQ_DEFAULT_FREQS = (40.0, 120.0, 400.0, 1500.0, 5000.0, 12000.0)
EQ_DEFAULT_TYPES = ("low_shelf", "bell", "bell", "bell", "bell", "high_shelf")
TONE_RANGE_DB = 6.0    # the tone control's treble gain either way (the bass goes the other way)
MB_BANDS = ("low", "mid", "high")
DITHER_MODES = ("off", "tpdf", "shaped")
# how the box's output is listened to (dsp.monitor): engine state like bypass, not a preset parameter,
# so no preset ever recalls a box into mono
MONITOR_MODES = ("stereo", "mono", "side", "left", "right")


def monitor_mode_index(mode: object) -> int:
    """The index of a listening mode's name in :data:`MONITOR_MODES`; ValueError naming them otherwise."""
    if not isinstance(mode, str) or mode not in MONITOR_MODES:
        raise ValueError(f"unknown listening mode {mode!r}: one of {', '.join(MONITOR_MODES)}")
    return MONITOR_MODES.index(mode)


def _build() -> tuple[Param, ...]:
    p: list[Param] = [
        # 1. input
        Param("in.trim_db", "Input trim", "input", "dB", -24.0, 24.0, 0.0, LIN, 20.0),
        _b("in.invert_l", "Invert polarity L", "input"),
        _b("in.invert_r", "Invert polarity R", "input"),
        _e("in.hpf_slope", "Subsonic filter", "input", ("off", "12", "24"), "off",
           "Subsonic high-pass slope in dB/octave, or off."),
        Param("in.hpf_freq", "Subsonic frequency", "input", "Hz", 10.0, 40.0, 20.0, LOG, 50.0),
        _b("in.dc_block", "DC removal", "input", help="A 5 Hz first-order DC blocker."),
    ]
    # 2. EQ
    for n in range(1, EQ_BANDS + 1):
        g = f"eq{n}"
        p += [
            _b(f"{g}.on", f"EQ {n} on", "eq"),
            _e(f"{g}.type", f"EQ {n} type", "eq", EQ_TYPES, EQ_DEFAULT_TYPES[n - 1]),
            Param(f"{g}.freq", f"EQ {n} frequency", "eq", "Hz", 20.0, 20000.0, EQ_DEFAULT_FREQS[n - 1], LOG, 30.0),
            Param(f"{g}.gain_db", f"EQ {n} gain", "eq", "dB", -18.0, 18.0, 0.0, LIN, 30.0),
            Param(f"{g}.q", f"EQ {n} Q", "eq", "", 0.1, 10.0, 0.707, LOG, 30.0),
            _e(f"{g}.place", f"EQ {n} placement", "eq", EQ_PLACES, "stereo"),
        ]
    # the tone control: a tilt of its own after the six bands (the front panel's TONE knob), so
    # turning it never takes over a band a preset uses
    p += [
        Param("eq.tone_db", "Tone", "eq", "dB", -TONE_RANGE_DB, TONE_RANGE_DB, 0.0, LIN, 30.0,
              help="Tilts the spectrum around the pivot: treble up and bass down by this much "
                   "(negative: darker). 0 dB is flat and costs nothing."),
        Param("eq.tone_freq", "Tone pivot", "eq", "Hz", 200.0, 5000.0, 1000.0, LOG, 30.0,
              help="Where the tone control's tilt turns: the frequency it leaves alone."),
    ]
    # 3. multiband compressor
    p += [
        _b("mb.on", "Multiband on", "multiband"),
        Param("mb.xover_low", "Low/mid split", "multiband", "Hz", 40.0, 800.0, 200.0, LOG, 50.0),
        Param("mb.xover_high", "Mid/high split", "multiband", "Hz", 1000.0, 16000.0, 3000.0, LOG, 50.0),
        Param("mb.mix", "Dry/wet mix", "multiband", "%", 0.0, 100.0, 100.0, LIN, 30.0),
    ]
    for b in MB_BANDS:
        g = f"mb.{b}"
        p += [
            Param(f"{g}.threshold_db", f"{b.title()} threshold", "multiband", "dB", -60.0, 0.0, -18.0, LIN, 30.0),
            Param(f"{g}.ratio", f"{b.title()} ratio", "multiband", ":1", 1.0, 20.0, 2.0, LOG, 30.0),
            Param(f"{g}.knee_db", f"{b.title()} knee", "multiband", "dB", 0.0, 24.0, 6.0, LIN, 30.0),
            Param(f"{g}.attack_ms", f"{b.title()} attack", "multiband", "ms", 0.1, 200.0, 10.0, LOG, 30.0),
            Param(f"{g}.release_ms", f"{b.title()} release", "multiband", "ms", 5.0, 2000.0, 150.0, LOG, 30.0),
            Param(f"{g}.makeup_db", f"{b.title()} makeup", "multiband", "dB", -12.0, 24.0, 0.0, LIN, 30.0),
            _b(f"{g}.bypass", f"{b.title()} bypass", "multiband"),
            _b(f"{g}.solo", f"{b.title()} solo", "multiband"),
        ]
    # 4. stereo
    p += [
        Param("st.width", "Stereo width", "stereo", "%", 0.0, 200.0, 100.0, LIN, 30.0),
        _b("st.mono_bass", "Mono bass", "stereo", help="Sum to mono below the mono-bass frequency."),
        Param("st.mono_freq", "Mono bass below", "stereo", "Hz", 40.0, 300.0, 120.0, LOG, 50.0),
        Param("st.balance", "Balance", "stereo", "", -1.0, 1.0, 0.0, LIN, 30.0,
              help="-1 = left only, +1 = right only; the far side falls on a sine-cosine "
                   "curve, the near side stays at unity (never a boost)."),
    ]
    # 5.-7. output drive, limiter, dither
    p += [
        Param("out.drive_db", "Output drive", "output", "dB", -36.0, 24.0, 0.0, LIN, 30.0,
              help="Gain into the limiter. Down to -36 dB so that every loudness target (down to -36 LUFS) "
                   "can be reached from a loud mix."),
        Param("lim.ceiling_dbtp", "Ceiling", "limiter", "dBTP", -12.0, 0.0, -1.0, LIN, 30.0),
        Param("lim.release_ms", "Limiter release", "limiter", "ms", 1.0, 1000.0, 50.0, LOG, 30.0),
        _b("lim.auto_release", "Automatic release", "limiter", True,
           help="Programme-dependent release: fast for transients, slow for sustained limiting."),
        _e("dither.mode", "Dither", "output", DITHER_MODES, "off",
           help="Applied only when the output word length is reduced; never to float output. "
                "tpdf: flat triangular dither. shaped: TPDF with noise shaping chosen by the sample rate: "
                "44.1 kHz Lipshitz 5-tap, 48 kHz modified E-weighted 9-tap (less noise at 1-6 kHz, more "
                "at 15-22 kHz), 88.2 and 96 kHz A-weighted 9-tap (the noise moved above 20 kHz: 13-14 dB "
                "less in 20 Hz-20 kHz than tpdf); flat TPDF at any other rate."),
        _e("dither.bits", "Dither word length", "output", ("16", "24"), "24"),
        # loudness target the preset is made for (read by learning, panel meters, master --preset)
        Param("target.lufs", "Loudness target", "target", "LUFS", -36.0, -5.0, -14.0, LIN, 0.0,
              help="Integrated loudness the preset aims at; learning and offline mastering set drive to hit it."),
        # monitoring: level-matched comparisons (bypass, settings 1 / 2)
        _b("ab.level_match", "Level-matched compare", "monitor", True,
           help="Compare at equal loudness: when bypassed, the dry signal is raised to the loudness the processing "
                "gives the passage playing (and limited at the output ceiling, so it never clips); "
                "after a switch of settings 1 / 2, the louder settings are turned down to the quieter's loudness "
                "until the settings are changed."),
    ]
    return tuple(p)


PARAMS: tuple[Param, ...] = _build()
INDEX: dict[str, int] = {p.id: i for i, p in enumerate(PARAMS)}
BY_ID: dict[str, Param] = {p.id: p for p in PARAMS}
COUNT = len(PARAMS)
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(p.group for p in PARAMS))


@dataclass(frozen=True)
class Macro:
    """A one-knob control that moves several parameters along piecewise-linear curves.

    ``curves`` maps a parameter id to ``((x0, y0), (x1, y1), ...)`` with x the macro
    position 0..1 and y the user value of the parameter at that position.
    """

    id: str
    label: str
    curves: Mapping[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    switches: Mapping[str, Any] = field(default_factory=dict)  # set while the macro is above 0

    def values(self, pos: float) -> dict[str, Any]:
        pos = min(max(float(pos), 0.0), 1.0)
        out: dict[str, Any] = {}
        for pid, pts in self.curves.items():
            out[pid] = _interp(pos, pts)
        if pos > 0.0:
            out.update(self.switches)
        return out


def _interp(x: float, pts: tuple[tuple[float, float], ...]) -> float:
    if x <= pts[0][0]:
        return pts[0][1]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return pts[-1][1]


MACROS: dict[str, Macro] = {
    "glue": Macro(
        "glue",
        "Glue (multiband amount)",
        curves={
            **{f"mb.{b}.threshold_db": ((0.0, 0.0), (0.5, -14.0), (1.0, -26.0)) for b in MB_BANDS},
            **{f"mb.{b}.ratio": ((0.0, 1.0), (0.5, 2.0), (1.0, 4.0)) for b in MB_BANDS},
            "mb.mix": ((0.0, 100.0), (1.0, 100.0)),
        },
        switches={"mb.on": True},
    ),
}


# -- whole-set helpers -------------------------------------------------------------------
def defaults() -> dict[str, Any]:
    """Every parameter at its default user value."""
    return {p.id: p.default for p in PARAMS}


def validate(values: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Check a mapping of user values against the schema.

    Returns the normalised values. Raises :class:`SchemaErrors` listing *every* problem
    (unknown parameter, wrong type, out of range, and - unless ``partial`` - missing).
    """
    errors: list[ParamError] = []
    out: dict[str, Any] = {}
    if not isinstance(values, Mapping):
        raise SchemaErrors([ParamError("params", f"must be an object of id: value, got {type(values).__name__}")])
    for k, v in values.items():
        p = BY_ID.get(k)
        if p is None:
            errors.append(ParamError(str(k), "unknown parameter"))
            continue
        try:
            out[k] = p.check(v)
        except ParamError as e:
            errors.append(e)
    if not partial:
        for p in PARAMS:
            if p.id not in values:
                errors.append(ParamError(p.id, "missing"))
    if errors:
        raise SchemaErrors(errors)
    return out


class SchemaErrors(ValueError):
    """All the problems found in one set of values; ``errors`` is a list of ParamError."""

    def __init__(self, errors: list[ParamError]):
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


def to_flat(values: Mapping[str, Any], out=None):
    """User values (a full or partial set over the defaults) -> flat float64 array."""
    import numpy as np

    arr = np.empty(COUNT, dtype=np.float64) if out is None else out
    for i, p in enumerate(PARAMS):
        arr[i] = p.to_flat(values.get(p.id, p.default))
    return arr


def from_flat(arr: Iterable[float]) -> dict[str, Any]:
    return {p.id: p.from_flat(float(x)) for p, x in zip(PARAMS, arr, strict=True)}


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse ``id=value`` as given to ``--set``; raises ParamError naming what is wrong."""
    if "=" not in text:
        raise ParamError(text, "expected id=value, e.g. eq1.gain_db=2.5")
    k, v = text.split("=", 1)
    k, v = k.strip(), v.strip()
    p = BY_ID.get(k)
    if p is None:
        close = [q.id for q in PARAMS if k.split(".")[0] == q.id.split(".")[0]][:6]
        hint = f" (known in that group: {', '.join(close)})" if close else ""
        raise ParamError(k, f"unknown parameter{hint}")
    return k, p.check(v)


def describe() -> list[dict[str, Any]]:
    """The schema as plain JSON-able rows (for the web UI and docs)."""
    return [
        {
            "id": p.id, "label": p.label, "group": p.group, "unit": p.unit, "min": p.min, "max": p.max,
            "default": p.default, "curve": p.curve, "smooth_ms": p.smooth_ms, "choices": list(p.choices),
            "help": p.help,
        }
        for p in PARAMS
    ]
