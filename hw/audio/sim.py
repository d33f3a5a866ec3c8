"""Simulated audio hardware: a clock-paced source and sink, for the demo and most tests.

The source is an audio file (looped, read into memory at open, and converted to the stream's
rate when it has another, as a desk would feed the box at its rate) or the built-in demo
programme (``dsp.programme.render_programme``, rendered once at open). The sink is a WAV file or nothing.
Pacing follows the wall clock exactly like a sound card would: period ``k`` becomes available
at ``start + k * period / rate``. A loop that falls more than the buffer (``periods - 1``
periods) behind counts an xrun and the clock restarts from now, as a card would recover; that
is checked when the period is handed over, so a loop woken from its wait for the period later
than that counts one too.
``paced=False`` runs as fast as the loop can go (offline checks of the engine).

The sink quantises to ``config.format`` with the same conversion as the ALSA backend and
writes the integer codes (or float32) untouched, so the file holds exactly what a device would
have been sent. Writing the file happens inside the loop; that is fine for simulation and is
the one place this backend does I/O in the loop.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from hw.audio.base import OK, XRUN, AudioBackend, DeviceError, StreamConfig
from hw.audio.formats import SampleCodec, sample_format

DEMO_SECONDS = 30.0
_SUBTYPES = {"S16_LE": "PCM_16", "S24_LE": "PCM_24", "S24_3LE": "PCM_24", "S32_LE": "PCM_32", "FLOAT_LE": "FLOAT"}


def demo_programme(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """The built-in demo programme, from ``dsp.programme`` (the meter package owns it)."""
    from dsp.programme import render_programme

    return np.ascontiguousarray(render_programme(seconds, rate, seed=seed), dtype=np.float64)


class SimBackend(AudioBackend):
    """``source``: a WAV path or None for the demo programme; ``sink``: a WAV path or None."""

    name = "sim"

    def __init__(self, config: StreamConfig, source: str | Path | None = None, sink: str | Path | None = None,
                 paced: bool = True, programme_seconds: float = DEMO_SECONDS):
        super().__init__(config)
        self.format = sample_format(config.format)
        self.source = source
        self.sink = sink
        self.paced = paced
        self.programme_seconds = programme_seconds
        self._codec = SampleCodec(self.format, self.period, self.channels)
        self._sink_view = self._sink_codes()
        self._src = None
        self._pos = 0
        self._file = None
        self._k = 0
        self._t0 = 0.0
        self._period_s = self.period / self.rate
        self._slack_s = self._period_s * max(self.periods - 1, 1)

    @property
    def output_bits(self) -> int | None:
        return self.format.output_bits

    def _sink_codes(self):
        c = self._codec
        name = self.format.name
        if name == "FLOAT_LE":
            return c._floats
        if name == "S24_3LE":
            return c._words  # int32 words holding sample << 8: what libsndfile's PCM_24 expects
        if name == "S24_LE":
            self._s24_words = np.zeros_like(c._ints)
            return self._s24_words
        return c._ints

    def open(self) -> None:
        import soundfile as sf

        if self._src is None:
            if self.source is None:
                try:
                    self._src = demo_programme(self.programme_seconds, self.rate)
                except ImportError as e:
                    raise DeviceError(f"the built-in demo programme is not available ({e}); "
                                      "give a source file") from None
            else:
                try:
                    data, rate = sf.read(str(self.source), dtype="float64", always_2d=True)
                except (OSError, RuntimeError) as e:
                    raise DeviceError(f"cannot read the source file {self.source}: {e}") from None
                if len(data) == 0:
                    raise DeviceError(f"the source file {self.source} holds no audio")
                if rate != self.rate:   # as a desk feeds the box at its rate: converted once, here
                    from dsp.resample import resample

                    data = resample(data, rate, self.rate)
                if data.shape[1] == 1:
                    data = np.repeat(data, 2, axis=1)
                self._src = np.ascontiguousarray(data[:, :2])
            self._src = np.nan_to_num(self._src, nan=0.0, posinf=0.0, neginf=0.0)
        if self.sink is not None and self._file is None:
            try:
                self._file = sf.SoundFile(str(self.sink), "w", samplerate=self.rate, channels=self.channels,
                                          subtype=_SUBTYPES[self.format.name])
            except (OSError, RuntimeError) as e:
                raise DeviceError(f"cannot write the sink file {self.sink}: {e}") from None
        self._k = 0
        self._t0 = 0.0

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def read(self, x: np.ndarray) -> int:
        if self.paced:
            now = time.monotonic()
            if self._k == 0 and self._t0 == 0.0:  # the clock starts with the first read
                self._t0 = now
            due = self._t0 + (self._k + 1) * self._period_s
            if now < due:
                time.sleep(due - now)
                # woken later than the buffer lasts (a loaded machine): the card overran meanwhile. Handing
                # the period over as if on time placed the xrun a block later and hid the time lost
                # (a capture came out shorter than its wall-clock length: docs/engine.md, 2026-11-25)
                now = time.monotonic()
            if now - due > self._slack_s:
                self.note_xrun("late by more than the buffer")
                self._k = 0
                self._t0 = now
                self._advance(x)
                return XRUN
        self._k += 1
        self._advance(x)
        return OK

    def _advance(self, x: np.ndarray) -> None:
        src = self._src
        n = x.shape[0]
        pos = self._pos
        end = pos + n
        if end <= src.shape[0]:
            np.copyto(x, src[pos:end])
            self._pos = end % src.shape[0]
        else:
            first = src.shape[0] - pos
            np.copyto(x[:first], src[pos:])
            rest = n - first
            while rest > src.shape[0]:  # a source shorter than one period
                np.copyto(x[n - rest:n - rest + src.shape[0]], src)
                rest -= src.shape[0]
            np.copyto(x[n - rest:], src[:rest])
            self._pos = rest

    def write(self, y: np.ndarray) -> int:
        self._codec.encode(y)
        if self._file is not None:
            if self.format.name == "S24_LE":
                np.left_shift(self._codec._ints, 8, out=self._s24_words)
            self._file.write(self._sink_view)
        return OK
