"""A deterministic, music-like stereo programme: drums, bass, chords and a lead line.

The simulated audio backend plays it as the box's built-in demo, and tests use it wherever
they need "music" rather than sines: material with a realistic crest factor (transient drums
over sustained tones), a loudness that moves between sections (so loudness range is not zero),
energy across the whole spectrum, and a real stereo image (panned parts, detuned chord voices,
a stereo echo on the lead).

No DC: every sound is made zero-mean where it is synthesised (:func:`_dc_free`). A decaying
sine, a one-sided click or a plucked tone whose phases do not cancel each has a net area, and
hundreds of kicks a minute add up (the kick's click and decaying body and the snare's body put
the programme's mean at about -57 dBFS before 2026-11-23). Real instruments reach the listener
through the air and cannot carry DC either.

Same ``seed`` and arguments, same samples: the key, tempo, patterns and melody come from a
seeded generator. Each distinct note or drum hit is synthesised once (vectorised numpy) and
then added at its onsets, so rendering runs far faster than real time.
"""

from __future__ import annotations

import math

import numpy as np

MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)
PROGRESSION = (0, 5, 2, 6)  # i - VI - III - VII, one chord per bar
# Arrangement, 4 bars per section: which parts play and how hard.
SECTIONS = (
    {"kick": 1.0, "snare": 1.0, "hats": 1.0, "bass": 1.0, "chords": 0.7, "lead": 0.0},  # verse
    {"kick": 1.0, "snare": 1.0, "hats": 1.0, "bass": 1.0, "chords": 1.0, "lead": 1.0},  # chorus
    {"kick": 1.0, "snare": 0.8, "hats": 0.8, "bass": 0.9, "chords": 0.6, "lead": 0.0},  # verse
    {"kick": 0.0, "snare": 0.0, "hats": 0.7, "bass": 0.5, "chords": 0.8, "lead": 0.8},  # breakdown
)
BARS_PER_SECTION = 4
TABLE_SIZE = 4096  # samples in one period of a note's wavetable


def _dc_free(wave: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """``wave`` minus ``(a + b t) shape`` (``shape``: its own slowly varying amplitude envelope, zero
    or small at the ends) with ``a, b`` chosen so the result's sum and first moment are zero: no DC,
    and no content just above it either (its spectrum starts as f^2), so the mean of any few
    seconds of the programme is ~0 too. The change is a smooth, sub-audio shift of the baseline,
    not of the sound's timbre or attack."""
    t = np.linspace(-1.0, 1.0, len(wave))
    # the 2 x 2 normal equations, solved in closed form (dsp/ stays free of BLAS: tests/dsp/test_kernel_cache.py)
    s0, s1, s2 = shape.sum(), (t * shape).sum(), (t * t * shape).sum()
    w0, w1 = wave.sum(), (t * wave).sum()
    det = s0 * s2 - s1 * s1
    if abs(det) > 1e-12 * abs(s0 * s2):
        a, b = (w0 * s2 - w1 * s1) / det, (s0 * w1 - s1 * w0) / det
    else:  # a single sample (or a shape with no spread): remove the mean only
        a, b = (w0 / s0 if s0 else 0.0), 0.0
    return wave - (a + b * t) * shape


def _midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


class _Synth:
    """Renders and caches the individual sounds at one sample rate."""

    def __init__(self, rate: int, rng: np.random.Generator):
        self.rate = rate
        self.rng = rng
        self._cache: dict = {}

    def _env(self, length: int, attack_s: float, decay_s: float) -> np.ndarray:
        t = np.arange(length) / self.rate
        env = np.exp(-t / decay_s)
        a = max(1, int(attack_s * self.rate))
        env[:a] *= np.linspace(0.0, 1.0, a, endpoint=False)
        release = min(length, int(0.01 * self.rate))  # 10 ms fade so notes never click
        env[length - release :] *= np.linspace(1.0, 0.0, release)
        return env

    def tone(self, note: float, seconds: float, kind: str) -> np.ndarray:
        """A band-limited harmonic tone: ``bass`` (bright, plucky), ``pad`` (soft) or ``lead``."""
        key = ("tone", note, round(seconds, 4), kind)
        if key in self._cache:
            return self._cache[key]
        length = max(1, int(seconds * self.rate))
        f0 = _midi_hz(note)
        rolloff, n_harm, attack, decay = {
            "bass": (1.2, 10, 0.004, 0.35),
            "pad": (1.8, 8, 0.06, 1.6),
            "lead": (1.0, 12, 0.01, 0.5),
        }[kind]
        # One period of the band-limited waveform, then read it at f0 (linear interpolation):
        # a few array operations per note instead of one sine per harmonic.
        grid = np.arange(TABLE_SIZE + 1) / TABLE_SIZE
        table = np.zeros(TABLE_SIZE + 1)
        for k in range(1, n_harm + 1):
            if k * f0 >= 0.45 * self.rate:
                break
            table += np.sin(2 * np.pi * k * grid + 0.3 * k) / k**rolloff
        pos = (np.arange(length) * (f0 / self.rate) % 1.0) * TABLE_SIZE
        idx = pos.astype(np.int64)
        frac = pos - idx
        wave = table[idx] * (1.0 - frac) + table[idx + 1] * frac
        if kind == "lead":  # gentle shimmer from a slightly detuned copy
            pos = (np.arange(length) * (f0 * 1.004 / self.rate) % 1.0) * TABLE_SIZE
            idx = pos.astype(np.int64)
            wave += 0.4 * table[idx]
        env = self._env(length, attack, decay)
        wave = _dc_free(wave * env, env)
        wave /= np.max(np.abs(wave))
        self._cache[key] = wave
        return wave

    def kick(self) -> np.ndarray:
        if "kick" not in self._cache:
            length = int(0.35 * self.rate)
            t = np.arange(length) / self.rate
            freq = 45.0 + 75.0 * np.exp(-t / 0.03)
            phase = 2 * np.pi * np.cumsum(freq) / self.rate
            body = np.sin(phase) * np.exp(-t / 0.12)
            click = np.exp(-t / 0.002) * 0.4
            w = body + click
            ramp = np.ones(length)
            ramp[: int(0.001 * self.rate)] = np.linspace(0, 1, int(0.001 * self.rate))
            w = _dc_free(w * ramp, np.exp(-t / 0.12) * ramp)  # the click and the body's decay have area
            self._cache["kick"] = w / np.max(np.abs(w))
        return self._cache["kick"]

    def _noise_hit(self, name: str, seconds: float, decay_s: float, hp_order: int, variants: int) -> list:
        if name not in self._cache:
            length = int(seconds * self.rate)
            hits = []
            for _ in range(variants):
                noise = self.rng.standard_normal(length + hp_order)
                for _ in range(hp_order):  # first differences: a cheap high-pass
                    noise = np.diff(noise)
                env = self._env(length, 0.0005, decay_s)
                w = _dc_free(noise * env, env)
                hits.append(w / np.max(np.abs(w)))
            self._cache[name] = hits
        return self._cache[name]

    def snare(self) -> list:
        hits = self._noise_hit("snare_noise", 0.25, 0.06, 1, 4)
        if "snare" not in self._cache:
            t = np.arange(len(hits[0])) / self.rate
            body = np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.05)
            body = _dc_free(body, self._env(len(t), 0.0005, 0.05))  # a decaying sine has area
            self._cache["snare"] = [(0.7 * h + 0.5 * body) / np.max(np.abs(0.7 * h + 0.5 * body)) for h in hits]
        return self._cache["snare"]

    def hat(self, open_: bool) -> list:
        if open_:
            return self._noise_hit("hat_open", 0.3, 0.09, 2, 2)
        return self._noise_hit("hat_closed", 0.06, 0.012, 2, 4)


def _add(buf: np.ndarray, start: int, wave: np.ndarray, left: float, right: float) -> None:
    end = min(buf.shape[0], start + wave.shape[0])
    if start >= end:
        return
    seg = wave[: end - start]
    buf[start:end, 0] += left * seg
    buf[start:end, 1] += right * seg


def render_programme(seconds: float, rate: int = 48000, seed: int = 0, peak_dbfs: float | None = None) -> np.ndarray:
    """``seconds`` of stereo music-like programme at ``rate`` Hz, float64 shape (frames, 2).

    The result peaks (sample peak) at ``peak_dbfs``; by default a level between -3 and -1 dBFS
    chosen by the seed. Deterministic for a given ``(seconds, rate, seed, peak_dbfs)``.
    """
    frames = int(round(seconds * rate))
    rng = np.random.default_rng(seed)
    synth = _Synth(rate, rng)
    bpm = float(rng.uniform(108, 128))
    root = 45 + int(rng.integers(-4, 6))  # bass register, around A2
    beat = 60.0 / bpm
    step = beat / 4  # sixteenth note
    n_bars = int(math.ceil(seconds / (4 * beat))) + 1
    buf = np.zeros((frames + int(2 * rate), 2))

    def at(bar: int, sixteenth: float) -> int:
        return int(round((bar * 16 + sixteenth) * step * rate))

    # Patterns drawn once per programme: a groove and a two-bar lead phrase per chord cycle.
    bass_pattern = [0, 3, 6, 8, 10, 11, 14] if rng.random() < 0.5 else [0, 2, 4, 7, 8, 10, 12, 14]
    ghost_snares = [s for s in (7, 9, 15) if rng.random() < 0.5]
    phrase_steps = sorted(rng.choice(np.arange(0, 32, 2), size=10, replace=False))
    phrase_degrees = np.cumsum(rng.integers(-2, 3, size=len(phrase_steps))) % 7
    phrase_lengths = rng.choice([2, 2, 4, 6], size=len(phrase_steps))

    for bar in range(n_bars):
        section = SECTIONS[(bar // BARS_PER_SECTION) % len(SECTIONS)]
        degree = PROGRESSION[bar % len(PROGRESSION)]
        chord_root = root + MINOR_SCALE[degree]
        vel = 10.0 ** (rng.normal(0.0, 1.0, size=32) / 20.0)  # +-1 dB humanised velocities
        if section["kick"]:
            for s in (0, 8) if bar % 2 else (0, 6, 8):
                _add(buf, at(bar, s), synth.kick(), 0.9 * vel[s] * section["kick"], 0.9 * vel[s] * section["kick"])
        if section["snare"]:
            snares = synth.snare()
            for s in (4, 12):
                w = snares[(bar + s) % len(snares)]
                g = 0.55 * vel[s + 1] * section["snare"]
                _add(buf, at(bar, s), w, 0.95 * g, g)
            for s in ghost_snares:
                _add(buf, at(bar, s), snares[s % len(snares)], 0.12, 0.1)
        if section["hats"]:
            for s in range(0, 16, 2):
                open_ = s == 14 and bar % 2 == 1
                hits = synth.hat(open_)
                g = (0.16 if s % 4 == 2 else 0.1) * vel[s + 2] * section["hats"]
                _add(buf, at(bar, s), hits[s % len(hits)], 0.6 * g, g)
        if section["bass"]:
            for k, s in enumerate(bass_pattern):
                nxt = bass_pattern[k + 1] if k + 1 < len(bass_pattern) else 16
                note = chord_root - 12 + (12 if s == 10 else 0)
                w = synth.tone(note, (nxt - s) * step * 0.9, "bass")
                g = 0.42 * vel[s] * section["bass"]
                _add(buf, at(bar, s), w, g, g)
        if section["chords"]:
            for k in (0, 2, 4):
                deg = degree + k
                note = root + 12 + MINOR_SCALE[deg % 7] + 12 * (deg // 7)
                g = 0.12 * section["chords"]
                _add(buf, at(bar, 0), synth.tone(note - 0.06, 16 * step, "pad"), g, 0.5 * g)
                _add(buf, at(bar, 0), synth.tone(note + 0.06, 16 * step, "pad"), 0.5 * g, g)
        if section["lead"]:
            half = bar % 2
            for s, d, length in zip(phrase_steps, phrase_degrees, phrase_lengths, strict=True):
                if (s >= 16) != bool(half):
                    continue
                deg = int(d) + (degree if s % 8 == 0 else 0)
                note = root + 24 + MINOR_SCALE[deg % 7] + 12 * (deg // 7)
                w = synth.tone(note, length * step, "lead")
                g = 0.22 * vel[(s % 16) + 3] * section["lead"]
                start = at(bar, s % 16)
                _add(buf, start, w, 0.8 * g, 0.55 * g)
                # Stereo echo: dotted eighth right, quarter left.
                _add(buf, start + int(3 * step * rate), w, 0.0, 0.3 * g)
                _add(buf, start + int(4 * step * rate), w, 0.18 * g, 0.0)

    out = buf[:frames]
    if peak_dbfs is None:
        peak_dbfs = float(rng.uniform(-3.0, -1.0))
    peak = np.max(np.abs(out)) if frames else 0.0
    if peak > 0:
        out *= 10.0 ** (peak_dbfs / 20.0) / peak
    return np.ascontiguousarray(out)
